/*
 * daemon.h - the daemon's entry points, called by main.c's command table.
 */
#ifndef FDC_DAEMON_H
#define FDC_DAEMON_H

/*
 * Runs the daemon until SIGTERM/SIGINT; argv[0] is "serve" or the program
 * name, options follow. Returns the process exit status.
 */
int serve_main(int argc, char **argv);

/* `check-config FILE [OPTIONS]`: prints the effective settings, token masked. */
int check_config_main(int argc, char **argv);

#endif
