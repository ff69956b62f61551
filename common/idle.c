/* idle.c - clients in order of last activity (see idle.h). */
#include "idle.h"

#include <stddef.h>

void idle_init(struct idle_list *list, int timeout_seconds)
{
    list->head.prev = &list->head;  /* empty: the sentinel points at itself */
    list->head.next = &list->head;
    list->head.owner = NULL;
    list->head.last_active_ms = 0;
    list->timeout_ms = (long long)timeout_seconds * 1000;
}

/* e goes in before the sentinel: at the tail, the newest. */
static void append(struct idle_list *list, struct idle_entry *e)
{
    e->prev = list->head.prev;
    e->next = &list->head;
    list->head.prev->next = e;
    list->head.prev = e;
}

void idle_add(struct idle_list *list, struct idle_entry *e, void *owner,
              long long now_ms)
{
    e->owner = owner;
    e->last_active_ms = now_ms;
    append(list, e);
}

void idle_touch(struct idle_list *list, struct idle_entry *e,
                long long now_ms)
{
    e->last_active_ms = now_ms;
    if (e->prev == NULL)
        return;  /* out of the list already: being closed as idle */
    if (e->next == &list->head)
        return;  /* already the newest (the usual case when one is busy) */
    idle_remove(e);
    append(list, e);
}

void idle_remove(struct idle_entry *e)
{
    if (e->prev == NULL)
        return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = NULL;
    e->next = NULL;
}

void *idle_expired(const struct idle_list *list, long long now_ms)
{
    long long wait = idle_next_ms(list, now_ms);

    return wait == 0 ? list->head.next->owner : NULL;
}

long long idle_next_ms(const struct idle_list *list, long long now_ms)
{
    const struct idle_entry *oldest = list->head.next;

    if (list->timeout_ms == 0 || oldest == &list->head)
        return -1;
    long long left = oldest->last_active_ms + list->timeout_ms - now_ms;
    return left > 0 ? left : 0;
}

bool idle_listed(const struct idle_entry *e) { return e->prev != NULL; }
