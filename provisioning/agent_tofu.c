/*
 * agent_tofu: take a local ACME server's root from its TLS chain and pin it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "agent_tofu.h"

static void
ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* A TCP connection to ss:port within timeout_ms; the fd or -1. */
static int
tcp_connect(const struct sockaddr_storage *ss, unsigned short port,
    int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage a = *ss;
	struct pollfd pfd;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	socklen_t alen, elen = sizeof(int);
	int fd, e = 0, flags;

	if (a.ss_family == AF_INET6) {
		((struct sockaddr_in6 *)&a)->sin6_port = htons(port);
		alen = sizeof(struct sockaddr_in6);
	} else {
		((struct sockaddr_in *)&a)->sin_port = htons(port);
		alen = sizeof(struct sockaddr_in);
	}
	if ((fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    (flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&a, alen) == -1) {
		if (errno != EINPROGRESS) {
			e = errno;
			goto fail;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1) {
			e = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
			e = errno;
		if (e != 0)
			goto fail;
	}
	if (fcntl(fd, F_SETFL, flags) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		e = errno;
		goto fail;
	}
	return fd;
fail:
	snprintf(err, errlen, "connect to port %u: %s", port, strerror(e));
	close(fd);
	return -1;
}

/* Is x self-signed: issued by itself and its signature checks out? */
static int
self_signed(X509 *x)
{
	EVP_PKEY *k = X509_get0_pubkey(x);

	return k != NULL && X509_check_issued(x, x) == X509_V_OK &&
	    X509_verify(x, k) == 1;
}

/* Verify leaf (with untrusted intermediates) up to root alone, for name. */
static int
verify_to_root(X509 *leaf, STACK_OF(X509) *chain, X509 *root, const char *name,
    char *err, size_t errlen)
{
	X509_STORE	*st = NULL;
	X509_STORE_CTX	*ctx = NULL;
	X509_VERIFY_PARAM *vp;
	int		 rc = -1, e;

	if ((st = X509_STORE_new()) == NULL || X509_STORE_add_cert(st, root) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, leaf, chain) != 1) {
		ossl_err(err, errlen, "verify setup");
		goto out;
	}
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
	if (name != NULL && X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1) {
		ossl_err(err, errlen, "verify setup");
		goto out;
	}
	if (X509_verify_cert(ctx) != 1) {
		e = X509_STORE_CTX_get_error(ctx);
		snprintf(err, errlen, "the chain does not verify with the root "
		    "for %s: %s", name ? name : "its names",
		    X509_verify_cert_error_string(e));
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

int
tofu_fetch_root(const struct disc_server *s, int timeout_ms, X509 **root,
    char *err, size_t errlen)
{
	SSL_CTX		*ctx = NULL;
	SSL		*ssl = NULL;
	STACK_OF(X509)	*chain;
	X509		*last, *leaf;
	char		 e[256];
	int		 fd = -1, rc = -1, n;

	*root = NULL;
	if (s->naddrs == 0) {
		snprintf(err, errlen, "%s: no address", s->name);
		return -1;
	}
	if ((fd = tcp_connect(&s->addrs[0], s->port, timeout_ms, e,
	    sizeof(e))) == -1) {
		snprintf(err, errlen, "%s: %s", s->name, e);
		return -1;
	}
	/* No verification here: there is nothing to verify against yet;
	 * the checks below decide. */
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    (ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_tlsext_host_name(ssl, s->name) != 1 ||
	    SSL_set_fd(ssl, fd) != 1) {
		ossl_err(err, errlen, "TLS setup");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		ossl_err(e, sizeof(e), "TLS handshake");
		snprintf(err, errlen, "%s: %s", s->name, e);
		goto out;
	}
	chain = SSL_get_peer_cert_chain(ssl);
	leaf = SSL_get0_peer_certificate(ssl);
	if (chain == NULL || leaf == NULL || (n = sk_X509_num(chain)) < 1) {
		snprintf(err, errlen, "%s: the server sent no certificate", s->name);
		goto out;
	}
	last = sk_X509_value(chain, n - 1);
	if (n < 2 || !self_signed(last)) {
		snprintf(err, errlen, "TOFU refused: the chain %s serves does "
		    "not end with a root (a self-signed certificate)", s->name);
		goto out;
	}
	if (X509_check_host(last, s->name, 0,
	    X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) != 1) {
		snprintf(err, errlen, "TOFU refused: the root's subjectAltName "
		    "does not contain %s, the name discovery gave (draft 3.5)",
		    s->name);
		goto out;
	}
	if (verify_to_root(leaf, chain, last, s->name, e, sizeof(e)) == -1) {
		snprintf(err, errlen, "TOFU refused: %s", e);
		goto out;
	}
	if (X509_up_ref(last) != 1) {
		ossl_err(err, errlen, "X509_up_ref");
		goto out;
	}
	*root = last;
	rc = 0;
	(void)SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd != -1)
		close(fd);
	return rc;
}

void
tofu_fingerprint(X509 *x, char out[96])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1)
		return;
	for (i = 0; i < n && i < 32; i++)
		snprintf(out + 3 * i, 4, i + 1 < n ? "%02X:" : "%02X", md[i]);
}

int
tofu_load(const char *path, X509 **root, char *err, size_t errlen)
{
	FILE *f;

	*root = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	*root = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (*root == NULL) {
		ossl_err(err, errlen, path);
		return -1;
	}
	return 1;
}

int
tofu_same(X509 *a, X509 *b)
{
	return X509_cmp(a, b) == 0;
}

int
tofu_save(const char *path, X509 *root, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (PEM_write_X509(f, root) != 1 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "%s: write failed", tmp);
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
tofu_verify_chain(const char *pem, X509 *root, const char *name, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*chain = NULL;
	X509		*leaf = NULL, *x;
	BIO		*b;
	int		 rc = -1;

	if ((b = BIO_new_mem_buf(pem, -1)) == NULL ||
	    (leaf = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
	    (chain = sk_X509_new_null()) == NULL) {
		ossl_err(err, errlen, "certificate chain");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(chain, x) == 0) {
			X509_free(x);
			ossl_err(err, errlen, "certificate chain");
			goto out;
		}
	ERR_clear_error();
	rc = verify_to_root(leaf, chain, root, name, err, errlen);
out:
	sk_X509_pop_free(chain, X509_free);
	X509_free(leaf);
	BIO_free(b);
	return rc;
}
