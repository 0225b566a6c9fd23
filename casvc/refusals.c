/*
 * refusals: a fixed table of peers with their refusals of the current
 * interval (see refusals.h).  No allocation after refusals_new().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refusals.h"

#define ACCOUNT_MAX	128
#define NAME_MAX_LEN	32

struct kind {
	int	 used;
	char	 op[NAME_MAX_LEN];
	char	 error[NAME_MAX_LEN];
	long	 count;		/* after the first, which was recorded */
};

struct entry {
	int		 used;
	struct peer	 peer;
	char		 account[ACCOUNT_MAX + 1];
	time_t		 started;	/* the interval's first refusal */
	time_t		 first, last;	/* of the counted ones */
	long		 count;
	struct kind	 kinds[REFUSALS_KINDS];
	long		 other;		/* counted beyond the kinds told apart */
};

struct refusals {
	struct entry	 peers[REFUSALS_PEERS];
	struct entry	 overflow;	/* every peer the table has no room for */
};

struct refusals *
refusals_new(void)
{
	return calloc(1, sizeof(struct refusals));
}

void
refusals_free(struct refusals *r)
{
	free(r);
}

static int
same_peer(const struct entry *e, const struct peer *p, const char *account)
{
	return e->used && e->peer.role == p->role && e->peer.uid == p->uid &&
	    e->peer.pid == p->pid && strcmp(e->account, account) == 0;
}

/* The peer's entry; a free one taken for it; or the overflow entry. */
static struct entry *
entry_for(struct refusals *r, const struct peer *p, const char *account)
{
	struct entry *free_one = NULL;
	size_t i;

	for (i = 0; i < REFUSALS_PEERS; i++) {
		if (same_peer(&r->peers[i], p, account))
			return &r->peers[i];
		if (!r->peers[i].used && free_one == NULL)
			free_one = &r->peers[i];
	}
	return free_one != NULL ? free_one : &r->overflow;
}

/* 1: the first of its kind this interval (taken note of), 0: counted. */
static int
note_kind(struct entry *e, const char *op, const char *error)
{
	struct kind *k;
	size_t i;

	for (i = 0; i < REFUSALS_KINDS && e->kinds[i].used; i++) {
		k = &e->kinds[i];
		if (strncmp(k->op, op, NAME_MAX_LEN - 1) == 0 &&
		    strncmp(k->error, error, NAME_MAX_LEN - 1) == 0) {
			k->count++;
			return 0;
		}
	}
	if (i == REFUSALS_KINDS) {
		e->other++;
		return 0;
	}
	k = &e->kinds[i];
	k->used = 1;
	snprintf(k->op, sizeof(k->op), "%s", op);
	snprintf(k->error, sizeof(k->error), "%s", error);
	return 1;
}

int
refusals_note(struct refusals *r, const struct peer *p, const char *account,
    const char *op, const char *error, time_t now)
{
	struct entry *e;

	if (account == NULL || strlen(account) > ACCOUNT_MAX)
		account = "";
	e = entry_for(r, p, account);
	if (!e->used) {
		memset(e, 0, sizeof(*e));
		e->used = 1;
		e->peer = *p;
		snprintf(e->account, sizeof(e->account), "%s", account);
		e->started = now;
	}
	if (note_kind(e, op, error))
		return 1;
	if (e->count == 0)
		e->first = now;
	e->last = now;
	e->count++;
	return 0;
}

static json_t *
summary(const struct entry *e, int overflow)
{
	json_t *kinds, *f;
	size_t i;

	if ((kinds = json_array()) == NULL)
		return NULL;
	for (i = 0; i < REFUSALS_KINDS && e->kinds[i].used; i++)
		if (e->kinds[i].count > 0 && json_array_append_new(kinds, json_pack("{s:s, s:s, s:I}",
		    "op", e->kinds[i].op, "error", e->kinds[i].error, "count",
		    (json_int_t)e->kinds[i].count)) == -1) {
			json_decref(kinds);
			return NULL;
		}
	f = json_pack("{s:I, s:I, s:I, s:i, s:o, s:I}", "count",
	    (json_int_t)e->count, "first", (json_int_t)e->first, "last",
	    (json_int_t)e->last, "interval", REFUSALS_INTERVAL, "refused", kinds,
	    "other", (json_int_t)e->other);
	if (f != NULL && !overflow && e->account[0] != '\0' &&
	    json_object_set_new(f, "account", json_string(e->account)) == -1) {
		json_decref(f);
		return NULL;
	}
	if (f != NULL && overflow &&
	    json_object_set_new(f, "overflow", json_true()) == -1) {
		json_decref(f);
		return NULL;
	}
	return f;
}

/* Summarise e if its interval is over; seconds until it is, or -1. */
static int
flush_one(struct entry *e, int overflow, time_t now, int all,
    refusals_fn *fn, void *arg)
{
	if (!e->used)
		return -1;
	if (!all && now < e->started + REFUSALS_INTERVAL)
		return (int)(e->started + REFUSALS_INTERVAL - now);
	if (e->count > 0)
		fn(arg, overflow ? NULL : &e->peer, summary(e, overflow));
	memset(e, 0, sizeof(*e));
	return -1;
}

int
refusals_flush(struct refusals *r, time_t now, int all, refusals_fn *fn,
    void *arg)
{
	int next = -1, t;
	size_t i;

	if (r == NULL)
		return -1;
	for (i = 0; i < REFUSALS_PEERS; i++)
		if ((t = flush_one(&r->peers[i], 0, now, all, fn, arg)) != -1 &&
		    (next == -1 || t < next))
			next = t;
	if ((t = flush_one(&r->overflow, 1, now, all, fn, arg)) != -1 &&
	    (next == -1 || t < next))
		next = t;
	return next;
}
