/*
 * config_current.c - the configuration in force, swapped under a mutex.
 *
 * An atomic pointer alone is not enough: between loading the pointer and taking a reference, a
 * reload could drop the last reference and free the config. The mutex makes "read the pointer
 * and take a reference" one step against "swap the pointer"; neither ever waits for I/O.
 */
#include <pthread.h>
#include <stdlib.h>

#include "config_current.h"

struct config_current {
    pthread_mutex_t lock;
    const struct config *config; /* holds a reference */
};

struct config_current *config_current_new(const struct config *config)
{
    struct config_current *current = calloc(1, sizeof(*current));

    if (!current)
        return NULL;
    pthread_mutex_init(&current->lock, NULL);
    current->config = config_ref(config);
    return current;
}

struct config_current *config_current_free(struct config_current *current)
{
    if (!current)
        return NULL;
    config_unref(current->config);
    pthread_mutex_destroy(&current->lock);
    free(current);
    return NULL;
}

const struct config *config_current_get(struct config_current *current)
{
    const struct config *config;

    pthread_mutex_lock(&current->lock);
    config = config_ref(current->config);
    pthread_mutex_unlock(&current->lock);
    return config;
}

void config_current_set(struct config_current *current, const struct config *config)
{
    const struct config *replaced;

    config_ref(config);
    pthread_mutex_lock(&current->lock);
    replaced = current->config;
    current->config = config;
    pthread_mutex_unlock(&current->lock);
    /* Outside the lock: the last reference frees, which need not block readers. */
    config_unref(replaced);
}
