/*
 * fake_workspace.h - `flyte-databricks-connector fake-workspace`: a local stand-in for a
 * Databricks workspace's Jobs API (runs/submit, runs/get, runs/cancel) over HTTPS, so the
 * installed binary can be tried and tested without a real workspace and without Python.
 *
 * At start-up it makes a throwaway CA and a server certificate for 127.0.0.1 / localhost (valid
 * one day), writes the CA to <dir>/ca.pem, listens, and prints to stdout (flushed), one per line:
 *     instance=127.0.0.1:<port>
 *     ca_file=<dir>/ca.pem
 *     token=<token>
 * Runs advance with time (fake_runs.h). SIGINT or SIGTERM stops it; a temporary directory it
 * made is removed.
 *
 * Threads: call from the process's main thread before any other thread exists (it blocks
 * SIGINT/SIGTERM/SIGPIPE for the threads it starts and takes signals with sigwait()).
 */
#ifndef FDC_FAKE_WORKSPACE_H
#define FDC_FAKE_WORKSPACE_H

/*
 * Runs the subcommand. argv[0] is "fake-workspace"; options:
 *   --port P (0: any free port, the default)   --host ADDR (IPv4 literal or localhost;
 *   default 127.0.0.1)   --dir DIR (default: a fresh temporary directory, removed on exit)
 *   --token T (default "fake-token")   --pending-seconds S (1)   --running-seconds S (2)
 *   --terminating-seconds S (1)   --max-runs N (10000)   --quiet (no access log)   --help
 * Borrows argv. Returns the exit status: 0 after SIGINT/SIGTERM or --help, 1 when it cannot
 * start (the reason on stderr), 2 on a usage error.
 */
int fake_workspace_main(int argc, char **argv);

#endif
