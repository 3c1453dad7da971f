"""CRIU's files: image files read from inside an archive, dump statistics, open files, the runc.conf block."""
