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

/* How far tls_files_check_ca() looks. */
enum tls_files_check {
    TLS_FILES_OPEN,    /* a regular file this process can open */
    TLS_FILES_CONTENT, /* that, holding at least one PEM certificate */
};

/*
 * Checks the extra CA bundle `path` (the ca_file setting). Returns 0, or
 * -errno and gives *reterr_msg naming the setting and the file (free()),
 * NULL when out of memory.
 */
int tls_files_check_ca(const char *path, enum tls_files_check check, char **reterr_msg);

#endif
