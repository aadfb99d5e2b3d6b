/*
 * hardening.h - what the process does at start so that a secret it holds does not end up
 * where others can read it: no core dump, and no token left in the environment block that
 * /proc/PID/environ shows.
 *
 * Threads: call from main before other threads start (hardening_no_core_dumps() applies to
 * the whole process; hardening_env_scrub() edits the environment, which no other thread may
 * read meanwhile).
 */
#ifndef FDC_HARDENING_H
#define FDC_HARDENING_H

#include <stddef.h>

/*
 * Makes the process non-dumpable (prctl(PR_SET_DUMPABLE, 0): no core file, no ptrace by
 * other processes of the same user, /proc/PID files owned by root) and sets RLIMIT_CORE to 0,
 * soft and hard. Returns 0, or -errno with *reterr_msg (free()) saying which step failed; the
 * steps that worked stay in force.
 */
int hardening_no_core_dumps(char **reterr_msg);

/*
 * Scrubs the variables names[0..count) (borrowed) from envp (a NULL-terminated "NAME=value"
 * array, normally environ): each value's bytes are zeroed where they lie (the environment
 * block /proc/PID/environ reads, for environ) and the entry is removed from the array, later
 * entries moving up. Returns how many entries were scrubbed. Pure: touches only envp.
 */
size_t hardening_env_scrub(char **envp, const char *const *names, size_t count);

/* Gives a deep copy of envp (NULL-terminated; free with hardening_env_free()), NULL on OOM. */
char **hardening_env_copy(char *const *envp);

/* Zeroes and frees a copy from hardening_env_copy() (takes; NULL-safe). Returns NULL. */
char **hardening_env_free(char **copy);

#endif
