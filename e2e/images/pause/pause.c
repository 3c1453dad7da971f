/* The pod infra ("pause") process: sleeps until told to stop. CRI-O runs it only for pods that share a PID
 * namespace (drop_infra_ctr skips it otherwise); built statically so the image needs nothing else. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; exit(0); }

int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    for (;;) pause();
}
