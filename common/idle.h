/* idle.h - clients in order of last activity, for --idle-timeout.
 *
 * A client that sends nothing, or takes none of its pending echo, holds its
 * slot for ever unless someone closes it (NOTES §3, "Idle clients"). Each
 * model keeps time its own way (a wait's timeout, a timerfd, a timer
 * signal, a timeout completion); this list answers the one question they
 * share: who has been idle longest, and since when?
 *
 * Each connection holds a struct idle_entry. Whenever bytes move on it (a
 * recv that got some, a send that took some), idle_touch() moves it to the
 * tail with the time. So the list stays in order of last activity, oldest
 * first, and the only client that can have expired is at the head:
 *
 *     head -> [fd 9, 10:00:01] -> [fd 7, 10:00:04] -> [fd 8, 10:00:05]
 *
 * Touching is O(1) (unlink, append), finding the expired ones costs only
 * the expired ones, however many clients are connected: no model scans its
 * clients to find who timed out. (nginx keeps a red-black tree of timers,
 * ordered by deadline, because its timeouts differ; ours are all equal, so
 * "last touched" order is deadline order and a list is enough. redis scans a
 * slice of its clients on every timer tick instead: clientsCron.)
 *
 * Not thread-safe: a threaded model holds its own lock around every call.
 */
#ifndef COMMON_IDLE_H
#define COMMON_IDLE_H

#include <stdbool.h>

struct idle_entry {
    struct idle_entry *prev;    /* NULL while not in a list */
    struct idle_entry *next;
    long long last_active_ms;   /* clock_ms() when bytes last moved */
    void *owner;                /* the model's struct conn */
};

struct idle_list {
    struct idle_entry head;     /* head.next: idle longest; head.prev: newest */
    long long timeout_ms;       /* 0: nobody ever expires (--idle-timeout 0) */
};

/* An empty list whose clients expire after timeout_seconds (0: never). */
void idle_init(struct idle_list *list, int timeout_seconds);

/* A new client, active now: e goes to the tail, e->owner = owner. */
void idle_add(struct idle_list *list, struct idle_entry *e, void *owner,
              long long now_ms);

/* Bytes moved on e's client: it becomes the newest. O(1). Does nothing
 * to an entry that is not in the list (a threaded model takes a client out
 * when it starts closing it as idle, and a completion may still touch it:
 * it must not come back). */
void idle_touch(struct idle_list *list, struct idle_entry *e,
                long long now_ms);

/* The client is gone. Harmless when e is not in a list. */
void idle_remove(struct idle_entry *e);

/* The owner of the client idle longest, if it has been idle timeout_ms or
 * more at now_ms; otherwise NULL. Call it until it returns NULL, closing
 * (and removing) each owner it returns. */
void *idle_expired(const struct idle_list *list, long long now_ms);

/* How long until the oldest client expires, in ms (0 if it already has),
 * or -1 when nothing can expire (no clients, or the timeout is 0). What
 * a wait's timeout or a timer's next expiry is computed from. */
long long idle_next_ms(const struct idle_list *list, long long now_ms);

/* True while e is in a list. */
bool idle_listed(const struct idle_entry *e);

#endif
