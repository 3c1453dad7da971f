"""The migration benchmark (`make bench`): our tool's downtime and total time against three baselines (the manual
recipe, a cold restart, the CRIU floor) by memory size and pattern, measured by a client-side prober, written to
docs/benchmarks.md with a plot.

Modules: prober (the client's view), workload (the counter, its Service and cleanup), cluster (API, kubelets, node
directories), ours / manual / cold / floor (one move each), parallel (several at once), results and targets (the
figures and the issue's ratios), facts (machine, versions, who else ran), report and plot (the outputs), main."""
