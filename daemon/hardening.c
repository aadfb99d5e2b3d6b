/*
 * hardening.c - keeps the daemon's secrets out of core files and out of its environment block.
 *
 * A crash dump of the daemon held the Databricks token three times (the Authorization header
 * in libcurl's buffers, the config, the environment): so the process is made non-dumpable and
 * RLIMIT_CORE 0 at start, before any secret is read, which also covers a core_pattern that
 * pipes dumps to a collector. A token given in the environment (flytekit's variable, a
 * systemd EnvironmentFile, a Kubernetes env entry) stays readable in /proc/PID/environ for
 * the life of the process unless its bytes are overwritten where the kernel put them: unsetenv()
 * alone only drops the pointer. The daemon keeps a private copy of the environment for
 * reloads (hardening_env_copy()), zeroed at exit.
 *
 * Owns nothing; main thread at start-up (see hardening.h).
 */
#include "hardening.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "errmsg.h"
#include "secret.h"

int hardening_no_core_dumps(char **reterr_msg)
{
    const struct rlimit none = {0, 0};
    struct rlimit now;
    int r = 0;

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        r = errmsg_set(reterr_msg, -errno, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
    /* Under the systemd unit the limit is 0 already (LimitCORE=0) and its system call
     * filter refuses setrlimit (@resources): nothing to do then. */
    if (getrlimit(RLIMIT_CORE, &now) == 0 && now.rlim_cur == 0 && now.rlim_max == 0)
        return r;
    if (setrlimit(RLIMIT_CORE, &none) < 0 && r == 0)
        r = errmsg_set(reterr_msg, -errno, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
    return r;
}

/* True when entry is "name=...". */
static bool names_variable(const char *entry, const char *name)
{
    size_t n = strlen(name);

    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

size_t hardening_env_scrub(char **envp, const char *const *names, size_t count)
{
    size_t scrubbed = 0, kept = 0;

    for (size_t i = 0; envp && envp[i]; i++) {
        bool secret = false;

        for (size_t k = 0; k < count && !secret; k++)
            secret = names_variable(envp[i], names[k]);
        if (!secret) {
            envp[kept++] = envp[i];
            continue;
        }
        {
            char *value = strchr(envp[i], '=') + 1;

            explicit_bzero(value, strlen(value));
        }
        scrubbed++;
    }
    if (envp)
        envp[kept] = NULL;
    return scrubbed;
}

char **hardening_env_copy(char *const *envp)
{
    size_t n = 0;
    char **copy;

    while (envp && envp[n])
        n++;
    copy = calloc(n + 1, sizeof(*copy));
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(envp[i]);
        if (!copy[i])
            return hardening_env_free(copy);
    }
    return copy;
}

char **hardening_env_free(char **copy)
{
    for (size_t i = 0; copy && copy[i]; i++)
        secret_free(copy[i]);
    free(copy);
    return NULL;
}
