/*
 * tls_files.h - checks of the TLS files the configuration names, so that a
 * file TLS cannot use is reported by check-config, at start-up and on
 * reload, naming the setting, rather than as a TLS error on the first
 * request that needs it.
 *
 * Threads: any; nothing is kept.
 */
#ifndef FDC_TLS_FILES_H
#define FDC_TLS_FILES_H

/*
 * Checks the extra CA bundle `path` (the ca_file setting): a regular file this process can
 * open, holding at least one PEM certificate. Returns 0, or
 * -errno and gives *reterr_msg naming the setting and the file (free()),
 * NULL when out of memory.
 */
int tls_files_check_ca(const char *path, char **reterr_msg);

#endif
