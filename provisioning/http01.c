/*
 * http01: the http-01 responder (see http01.h).  One thread, one poll()
 * loop over the listening socket, a wake-up pipe and up to MAX_CONNS
 * non-blocking connections; each connection reads one request, gets one
 * answer and is closed (validators open a connection per request anyway).
 * The token table is a small hash table behind a mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http01.h"

#define MAX_CONNS	256
#define REQ_MAX		4096
#define CONN_TIMEOUT_MS	5000
#define NBUCKETS	256
#define PREFIX		"/.well-known/acme-challenge/"

struct token {
	struct token	*next;
	char		*token;
	char		*keyauth;
};

struct conn {
	int		 fd;
	long long	 deadline;	/* monotonic ms */
	size_t		 inlen;
	char		 in[REQ_MAX + 1];
	char		*out;		/* response, once the request is read */
	size_t		 outlen, outoff;
};

struct acme_http01 {
	int		 lfd;
	int		 wake[2];	/* write a byte to stop the thread */
	int		 port;
	pthread_t	 thread;
	pthread_mutex_t	 mtx;		/* guards buckets and served */
	struct token	*buckets[NBUCKETS];
	unsigned long	 served;
	struct conn	*conns[MAX_CONNS];
	size_t		 nconns;
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* FNV-1a: tokens are random already, any spread will do. */
static unsigned
bucket_of(const char *token)
{
	uint32_t h = 2166136261u;

	for (; *token != '\0'; token++)
		h = (h ^ (unsigned char)*token) * 16777619u;
	return h % NBUCKETS;
}

static int
token_ok(const char *t)
{
	size_t n = 0;

	for (; t[n] != '\0'; n++)
		if (!((t[n] >= 'A' && t[n] <= 'Z') || (t[n] >= 'a' && t[n] <= 'z') ||
		    (t[n] >= '0' && t[n] <= '9') || t[n] == '-' || t[n] == '_'))
			return 0;
	return n > 0 && n <= 256;
}

int
acme_http01_add(struct acme_http01 *h, const char *token, const char *keyauth)
{
	struct token	*t;
	unsigned	 b;

	if (!token_ok(token) || (t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	if ((t->token = strdup(token)) == NULL ||
	    (t->keyauth = strdup(keyauth)) == NULL) {
		free(t->token);
		free(t);
		return -1;
	}
	b = bucket_of(token);
	pthread_mutex_lock(&h->mtx);
	t->next = h->buckets[b];
	h->buckets[b] = t;
	pthread_mutex_unlock(&h->mtx);
	return 0;
}

void
acme_http01_remove(struct acme_http01 *h, const char *token)
{
	struct token	**pp, *t;
	unsigned	  b = bucket_of(token);

	pthread_mutex_lock(&h->mtx);
	for (pp = &h->buckets[b]; (t = *pp) != NULL; pp = &t->next)
		if (strcmp(t->token, token) == 0) {
			*pp = t->next;
			free(t->token);
			free(t->keyauth);
			free(t);
			break;
		}
	pthread_mutex_unlock(&h->mtx);
}

unsigned long
acme_http01_served(struct acme_http01 *h)
{
	unsigned long n;

	pthread_mutex_lock(&h->mtx);
	n = h->served;
	pthread_mutex_unlock(&h->mtx);
	return n;
}

int
acme_http01_port(const struct acme_http01 *h)
{
	return h->port;
}

/* The key authorization for token, malloc'd, or NULL. */
static char *
lookup(struct acme_http01 *h, const char *token, size_t len)
{
	struct token	*t;
	char		 key[257], *ka = NULL;

	if (len == 0 || len >= sizeof(key))
		return NULL;
	memcpy(key, token, len);
	key[len] = '\0';
	pthread_mutex_lock(&h->mtx);
	for (t = h->buckets[bucket_of(key)]; t != NULL; t = t->next)
		if (strcmp(t->token, key) == 0) {
			ka = strdup(t->keyauth);
			if (ka != NULL)
				h->served++;
			break;
		}
	pthread_mutex_unlock(&h->mtx);
	return ka;
}

static char *
response(int code, const char *reason, const char *body)
{
	char	*r;

	if (asprintf(&r, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", code, reason,
	    strlen(body), body) == -1)
		return NULL;
	return r;
}

/* Build the answer to the complete request head in c->in. */
static char *
answer(struct acme_http01 *h, struct conn *c)
{
	char	*sp, *path, *end, *ka, *r;
	size_t	 plen = strlen(PREFIX);

	if (strncmp(c->in, "GET ", 4) != 0)
		return response(405, "Method Not Allowed", "");
	path = c->in + 4;
	if ((sp = strchr(path, ' ')) == NULL || (end = strstr(path, "\r\n")) == NULL ||
	    sp > end)
		return response(400, "Bad Request", "");
	if ((size_t)(sp - path) <= plen || strncmp(path, PREFIX, plen) != 0)
		return response(404, "Not Found", "");
	if ((ka = lookup(h, path + plen, (size_t)(sp - path) - plen)) == NULL)
		return response(404, "Not Found", "");
	r = response(200, "OK", ka);
	free(ka);
	return r;
}

static void
conn_close(struct acme_http01 *h, size_t i)
{
	struct conn *c = h->conns[i];

	close(c->fd);
	free(c->out);
	free(c);
	h->conns[i] = h->conns[--h->nconns];
}

static void
accept_one(struct acme_http01 *h)
{
	struct conn	*c;
	int		 fd;

	fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1)
		return;		/* EAGAIN, ECONNABORTED, EMFILE: try later */
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->deadline = now_ms() + CONN_TIMEOUT_MS;
	h->conns[h->nconns++] = c;
}

/* Read or write what the socket allows; 0 keeps the connection, -1 ends it. */
static int
conn_io(struct acme_http01 *h, struct conn *c, short revents)
{
	ssize_t	 n;

	if (c->out == NULL && (revents & (POLLIN | POLLHUP | POLLERR))) {
		n = read(c->fd, c->in + c->inlen, REQ_MAX - c->inlen);
		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		c->inlen += (size_t)n;
		c->in[c->inlen] = '\0';
		if (strstr(c->in, "\r\n\r\n") != NULL)
			c->out = answer(h, c);
		else if (c->inlen == REQ_MAX)
			c->out = response(431, "Request Header Fields Too Large", "");
		else
			return 0;
		if (c->out == NULL)
			return -1;
		c->outlen = strlen(c->out);
	}
	if (c->out != NULL) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n == -1)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		c->outoff += (size_t)n;
		if (c->outoff == c->outlen)
			return -1;	/* done: close */
	}
	return 0;
}

static void *
serve(void *arg)
{
	struct acme_http01	*h = arg;
	struct pollfd		 pfd[MAX_CONNS + 2];
	long long		 t, next;
	size_t			 i, n;
	int			 timeout;

	for (;;) {
		pfd[0].fd = h->wake[0];
		pfd[0].events = POLLIN;
		/* A full table stops accepting: the kernel's backlog waits. */
		pfd[1].fd = h->nconns < MAX_CONNS ? h->lfd : -1;
		pfd[1].events = POLLIN;
		t = now_ms();
		next = t + 1000;
		for (i = 0; i < h->nconns; i++) {
			pfd[i + 2].fd = h->conns[i]->fd;
			pfd[i + 2].events = h->conns[i]->out ? POLLOUT : POLLIN;
			pfd[i + 2].revents = 0;
			if (h->conns[i]->deadline < next)
				next = h->conns[i]->deadline;
		}
		n = h->nconns;
		timeout = next > t ? (int)(next - t) : 0;
		if (poll(pfd, n + 2, timeout) == -1 && errno != EINTR)
			break;
		if (pfd[0].revents != 0)
			break;
		/* Walk backwards: conn_close moves the last entry into i. */
		t = now_ms();
		for (i = n; i-- > 0;) {
			if ((pfd[i + 2].revents != 0 &&
			    conn_io(h, h->conns[i], pfd[i + 2].revents) == -1) ||
			    h->conns[i]->deadline <= t)
				conn_close(h, i);
		}
		if (pfd[1].revents & POLLIN)
			accept_one(h);
	}
	while (h->nconns > 0)
		conn_close(h, h->nconns - 1);
	return NULL;
}

static int
listen_on(const char *addr, int port, int *boundport, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sl;
	int			 fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (addr == NULL)
		addr = "127.0.0.1";
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sl = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*sin6);
	} else {
		snprintf(err, errlen, "%s: not a numeric address", addr);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 512) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1) {
		snprintf(err, errlen, "listen on %s port %d: %s", addr, port,
		    strerror(errno));
		close(fd);
		return -1;
	}
	*boundport = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

struct acme_http01 *
acme_http01_start(const char *addr, int port, char *err, size_t errlen)
{
	struct acme_http01	*h;
	int			 rc;

	if (port < 0 || port > 65535) {
		snprintf(err, errlen, "port %d out of range", port);
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->wake[0] = h->wake[1] = -1;
	if ((h->lfd = listen_on(addr, port, &h->port, err, errlen)) == -1)
		goto fail;
	if (pipe2(h->wake, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((rc = pthread_mutex_init(&h->mtx, NULL)) != 0) {
		snprintf(err, errlen, "mutex: %s", strerror(rc));
		goto fail;
	}
	if ((rc = pthread_create(&h->thread, NULL, serve, h)) != 0) {
		snprintf(err, errlen, "thread: %s", strerror(rc));
		pthread_mutex_destroy(&h->mtx);
		goto fail;
	}
	return h;
fail:
	if (h->lfd != -1)
		close(h->lfd);
	if (h->wake[0] != -1) {
		close(h->wake[0]);
		close(h->wake[1]);
	}
	free(h);
	return NULL;
}

void
acme_http01_stop(struct acme_http01 *h)
{
	struct token	*t, *next;
	size_t		 b;
	char		 c = 0;

	if (h == NULL)
		return;
	/* If the write fails the pipe is broken and poll sees POLLERR anyway. */
	while (write(h->wake[1], &c, 1) == -1 && errno == EINTR)
		;
	pthread_join(h->thread, NULL);
	close(h->wake[0]);
	close(h->wake[1]);
	close(h->lfd);
	for (b = 0; b < NBUCKETS; b++)
		for (t = h->buckets[b]; t != NULL; t = next) {
			next = t->next;
			free(t->token);
			free(t->keyauth);
			free(t);
		}
	pthread_mutex_destroy(&h->mtx);
	free(h);
}
