/*
 * config_current.h - the configuration in force, which a reload replaces while calls read it.
 *
 * Every call takes the config in force when it starts and keeps it to its end (config.h's
 * reference count), so a reload never changes settings under a call, and the config it
 * replaced is freed when the last call that started under it ends.
 *
 * Threads: any; one mutex, held only to swap or take a reference.
 */
#ifndef FDC_CONFIG_CURRENT_H
#define FDC_CONFIG_CURRENT_H

#include "config.h"

struct config_current;

/* Gives a holder of `config`, taking a reference of its own; NULL when out of memory. */
struct config_current *config_current_new(const struct config *config);

/* Drops the holder's reference and frees it (NULL is fine). Returns NULL. */
struct config_current *config_current_free(struct config_current *current);

/* Gives the config in force with a reference for the caller: config_unref() it when done. */
const struct config *config_current_get(struct config_current *current);

/* Puts `config` in force, taking a reference of its own, and drops the one of the config it
 * replaces (freed now unless a call still holds it). */
void config_current_set(struct config_current *current, const struct config *config);

#endif
