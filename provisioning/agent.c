/*
 * iotca-agent: the IoT device's side of draft-sweet-iot-acme; see agent.h
 * and iotca-agent(8).
 *
 *	iotca-agent [-c FILE] run
 *	iotca-agent [-c FILE] enrol --once
 *	iotca-agent [-c FILE] status [--json]
 *	iotca-agent [-c FILE] trust [--out PATH]
 *	iotca-agent [-c FILE] trust --accept NETWORK
 *	iotca-agent [-c FILE] reset
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acmeclient.h"
#include "agent.h"
#include "agent_config.h"
#include "agent_net.h"
#include "agent_tofu.h"
#include "http01.h"

#define ID_MAX		64
#define PATH_LEN	4096
#define HOOK_TIMEOUT_S	30

/* Everything one pass knows about the network it runs on. */
struct pass {
	const struct agent_config *cfg;
	char		 id[ID_MAX];
	struct agent_net net;
	struct disc_server srv;
	char		 dir[PATH_LEN];	/* the network's state directory */
	json_t		*status;	/* status.json, updated and saved */
};

/* Set by SIGTERM/SIGINT while the agent is busy: die at once, since every
 * file is replaced atomically and nothing is half-written. */
static volatile sig_atomic_t busy;

static void __attribute__((format(printf, 1, 2)))
logmsg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "iotca-agent: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static void
on_term(int sig)
{
	(void)sig;
	if (busy)
		_exit(0);
}

/* SIGHUP while busy: the pass under way is the one asked for. */
static void
on_hup(int sig)
{
	(void)sig;
}

/* ------------------------------------------------------------- files */

static int
mkpath(char *buf, size_t len, const char *dir, const char *file)
{
	size_t d = strlen(dir), f = strlen(file);

	/* Not snprintf: the compiler cannot see that the result is checked. */
	if (d + 1 + f + 1 > len)
		return -1;
	memcpy(buf, dir, d);
	buf[d] = '/';
	memcpy(buf + d + 1, file, f + 1);
	return 0;
}

/* Replace path with data (mode) through a temporary file and rename. */
static int
write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_LEN];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -1;
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1)
		return -1;
	if (fchmod(fd, mode) == -1 || write(fd, data, len) != (ssize_t)len ||
	    fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A whole small file, NUL-terminated; NULL if absent or unreadable. */
static char *
read_all(const char *path)
{
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			if (cap > (1u << 20) ||
			    (nb = realloc(buf, cap + 8192)) == NULL) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = nb;
			cap += 8192;
		}
		if ((n = read(fd, buf + len, cap - len - 1)) == -1) {
			if (errno == EINTR)
				continue;
			free(buf);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

static char *
pkey_pem(EVP_PKEY *k, size_t *len)
{
	BIO *b;
	BUF_MEM *m;
	char *out = NULL;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    BIO_get_mem_ptr(b, &m) == 1 && (out = malloc(m->length + 1)) != NULL) {
		memcpy(out, m->data, m->length);
		out[m->length] = '\0';
		*len = m->length;
	}
	BIO_free(b);
	return out;
}

/* ----------------------------------------------------------- status */

static void
status_load(struct pass *p)
{
	char path[PATH_LEN];

	json_decref(p->status);
	p->status = NULL;
	if (mkpath(path, sizeof(path), p->dir, "status.json") == 0)
		p->status = json_load_file(path, 0, NULL);
	if (p->status == NULL || !json_is_object(p->status)) {
		json_decref(p->status);
		p->status = json_object();
	}
}

static void
status_set(struct pass *p, const char *key, json_t *v)
{
	if (p->status != NULL && v != NULL)
		(void)json_object_set_new(p->status, key, v);
	else
		json_decref(v);
}

static void
status_save(struct pass *p)
{
	char path[PATH_LEN], *s;

	if (p->status == NULL || mkpath(path, sizeof(path), p->dir,
	    "status.json") == -1)
		return;
	if ((s = json_dumps(p->status, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
		return;
	if (write_atomic(path, s, strlen(s), 0644) == -1)
		logmsg("%s: cannot write: %s", path, strerror(errno));
	free(s);
}

/* Log a failure and keep it as the network's last error. */
static void __attribute__((format(printf, 2, 3)))
fail(struct pass *p, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	logmsg("%s", msg);
	if (p != NULL && p->status != NULL) {
		status_set(p, "last_error", json_string(msg));
		status_save(p);
	}
}

/* ------------------------------------------------------------- hooks */

/* Run an operator's program (no shell) with args and wait for it. */
static void
run_hook(const char *prog, const char *what, char *const argv[])
{
	pid_t pid, w;
	int st, i;

	if (prog == NULL)
		return;
	if ((pid = fork()) == -1) {
		logmsg("%s: fork: %s", what, strerror(errno));
		return;
	}
	if (pid == 0) {
		execv(prog, argv);
		_exit(127);
	}
	for (i = 0; i < HOOK_TIMEOUT_S * 10; i++) {
		if ((w = waitpid(pid, &st, WNOHANG)) == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				logmsg("%s %s failed (status %d)", what, prog,
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
			return;
		}
		usleep(100000);
	}
	logmsg("%s %s still running after %d s; killed", what, prog,
	    HOOK_TIMEOUT_S);
	kill(pid, SIGKILL);
	(void)waitpid(pid, &st, 0);
}

/* --------------------------------------------------------- the network */

static int
open_network(struct pass *p, char *err, size_t errlen)
{
	char name[64];

	if (agent_device_id(p->cfg, p->id, sizeof(p->id), err, errlen) == -1)
		return -1;
	if (agent_net_identify(p->cfg, &p->net, err, errlen) == -1)
		return -1;
	if (p->net.dhcp_note[0] != '\0')
		logmsg("%s", p->net.dhcp_note);
	if (mkdir(p->cfg->state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", p->cfg->state_dir, strerror(errno));
		return -1;
	}
	snprintf(name, sizeof(name), "net-%s", p->net.key);
	if (mkpath(p->dir, sizeof(p->dir), p->cfg->state_dir, name) == -1 ||
	    (mkdir(p->dir, 0700) == -1 && errno != EEXIST)) {
		snprintf(err, errlen, "%.900s: %s", p->dir, strerror(errno));
		return -1;
	}
	status_load(p);
	status_set(p, "network", json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "key", p->net.key, "interface", p->net.ifname,
	    "router_mac", p->net.router_mac, "ssid", p->net.ssid,
	    "domain", p->net.domain));
	status_set(p, "device_id", json_string(p->id));
	status_set(p, "last_attempt", json_integer((json_int_t)time(NULL)));
	return 0;
}

static int
discover(struct pass *p)
{
	char err[1024], a[INET6_ADDRSTRLEN] = "";
	const struct sockaddr_storage *ss;
	int rc;

	rc = agent_net_discover(p->cfg, &p->net, &p->srv, err, sizeof(err));
	if (rc != 1) {
		fail(p, "%s", err);
		return rc == 0 ? 3 : 1;
	}
	ss = &p->srv.addrs[0];
	(void)inet_ntop(ss->ss_family, ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr, a, sizeof(a));
	logmsg("network %s (%s, router %s, domain \"%s\"): server %s port %u "
	    "(%s, %s)", p->net.key, p->net.ifname, p->net.router_mac[0] ?
	    p->net.router_mac : "none", p->net.domain, p->srv.name,
	    p->srv.port, p->srv.source, a);
	status_set(p, "server", json_pack("{s:s, s:i, s:s, s:s, s:s}", "name",
	    p->srv.name, "port", (int)p->srv.port, "path", p->srv.path,
	    "source", p->srv.source, "address", a));
	return 0;
}

/*
 * Trust on first use: the root of the server's TLS chain, pinned for this
 * network; a different one is refused and set aside until accepted.
 */
static int
check_root(struct pass *p)
{
	char err[1024], path[PATH_LEN], npath[PATH_LEN], fp[96], nfp[96];
	X509 *served = NULL, *pinned = NULL, *seen = NULL;
	char *argv[5];
	int rc = 1, have, told = 0;

	if (mkpath(path, sizeof(path), p->dir, "root.pem") == -1 ||
	    mkpath(npath, sizeof(npath), p->dir, "root-new.pem") == -1)
		return 1;
	if (tofu_fetch_root(&p->srv, 10000, &served, err, sizeof(err)) == -1) {
		fail(p, "%s", err);
		return 1;
	}
	tofu_fingerprint(served, fp);
	if ((have = tofu_load(path, &pinned, err, sizeof(err))) == -1) {
		fail(p, "pinned root: %s", err);
		goto out;
	}
	if (have == 0) {
		if (tofu_save(path, served, err, sizeof(err)) == -1) {
			fail(p, "%s", err);
			goto out;
		}
		logmsg("network %s: pinned the root of %s on first use, SHA-256 %s",
		    p->net.key, p->srv.name, fp);
	} else if (!tofu_same(pinned, served)) {
		tofu_fingerprint(pinned, nfp);
		/* The user is told once per new root, not on every pass. */
		if (tofu_load(npath, &seen, err, sizeof(err)) == 1 &&
		    tofu_same(seen, served))
			told = 1;
		if (!told)
			(void)tofu_save(npath, served, err, sizeof(err));
		status_set(p, "root_change", json_string(fp));
		fail(p, "refused: %s now serves a different root (SHA-256 %s; "
		    "pinned %s); keeping the current certificate until "
		    "\"iotca-agent trust --accept %s\"", p->srv.name, fp, nfp,
		    p->net.key);
		argv[0] = p->cfg->notify_command;
		argv[1] = p->net.key;
		argv[2] = p->srv.name;
		argv[3] = fp;
		argv[4] = NULL;
		if (!told)
			run_hook(p->cfg->notify_command, "notify_command", argv);
		goto out;
	}
	(void)json_object_del(p->status, "root_change");
	status_set(p, "root_fingerprint", json_string(fp));
	rc = 0;
out:
	X509_free(served);
	X509_free(pinned);
	X509_free(seen);
	return rc;
}

/* -------------------------------------------------------------- ACME */

static EVP_PKEY *
account_key(struct pass *p)
{
	char path[PATH_LEN], *pem;
	EVP_PKEY *k = NULL;
	size_t len = 0;
	FILE *f;

	if (mkpath(path, sizeof(path), p->dir, "account.key") == -1)
		return NULL;
	if ((f = fopen(path, "r")) != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		if (k == NULL)
			fail(p, "%s: not a private key", path);
		return k;
	}
	if ((k = EVP_EC_gen("P-256")) == NULL || (pem = pkey_pem(k, &len)) == NULL) {
		fail(p, "account key generation failed");
		EVP_PKEY_free(k);
		return NULL;
	}
	if (write_atomic(path, pem, len, 0600) == -1) {
		fail(p, "%s: %s", path, strerror(errno));
		EVP_PKEY_free(k);
		k = NULL;
	}
	OPENSSL_cleanse(pem, len);
	free(pem);
	return k;
}

static struct acme_client *
client_open(struct pass *p)
{
	struct acme_client_config cc = { 0 };
	struct acme_error e = { 0 };
	struct acme_client *c;
	char url[600], ca[PATH_LEN], resolve[400], a[INET6_ADDRSTRLEN];
	const struct sockaddr_storage *ss = &p->srv.addrs[0];
	EVP_PKEY *k;

	if ((k = account_key(p)) == NULL)
		return NULL;
	if (inet_ntop(ss->ss_family, ss->ss_family == AF_INET6 ?
	    (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
	    (const void *)&((const struct sockaddr_in *)ss)->sin_addr, a,
	    sizeof(a)) == NULL)
		a[0] = '\0';
	snprintf(url, sizeof(url), "https://%s:%u%s", p->srv.name, p->srv.port,
	    p->srv.path);
	snprintf(resolve, sizeof(resolve), ss->ss_family == AF_INET6 ?
	    "%s:%u:[%s]" : "%s:%u:%s", p->srv.name, p->srv.port, a);
	(void)mkpath(ca, sizeof(ca), p->dir, "root.pem");
	cc.directory_url = url;
	cc.ca_file = ca;
	cc.account_key = k;
	cc.resolve = resolve;
	c = acme_client_new(&cc, &e);
	EVP_PKEY_free(k);
	if (c == NULL)
		fail(p, "ACME client: %s", e.detail);
	return c;
}

static void
acme_fail(struct pass *p, const char *what, const struct acme_error *e)
{
	fail(p, "%s: %s%s%s", what, e->type[0] ? e->type : "",
	    e->type[0] ? ": " : "", e->detail);
}

/* The certificate's validity, and when to renew (2/3 of its life). */
static int
cert_times(const char *pem, time_t *nb, time_t *na)
{
	BIO *b;
	X509 *x = NULL;
	struct tm tm;
	int rc = -1;

	if ((b = BIO_new_mem_buf(pem, -1)) != NULL &&
	    (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL &&
	    ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1) {
		*nb = timegm(&tm);
		if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) {
			*na = timegm(&tm);
			rc = 0;
		}
	}
	X509_free(x);
	BIO_free(b);
	return rc;
}

/* When to renew: inside the server's ARI window, else at 2/3 of the life. */
static time_t
renewal_time(struct pass *p, struct acme_client *c, const char *pem)
{
	struct acme_renewal_info ri;
	struct acme_error e = { 0 };
	time_t nb, na, t;
	unsigned int r = 0;

	if (cert_times(pem, &nb, &na) == -1)
		return time(NULL) + p->cfg->retry_seconds;
	t = nb + (na - nb) * 2 / 3;
	if (c != NULL && acme_has_renewal_info(c) &&
	    acme_renewal_info(c, pem, &ri, &e) == 0 && ri.end > ri.start) {
		/* A random moment in the window (RFC 9773 4.2). */
		(void)RAND_bytes((unsigned char *)&r, sizeof(r));
		t = ri.start + (time_t)(r % (unsigned int)(ri.end - ri.start));
	}
	return t;
}

static int
install(struct pass *p, const char *chain, EVP_PKEY *key)
{
	char cpath[PATH_LEN], kpath[PATH_LEN], *kpem;
	char *argv[3];
	size_t klen = 0;
	int rc = -1;

	if ((kpem = pkey_pem(key, &klen)) == NULL) {
		fail(p, "cannot encode the certificate key");
		return -1;
	}
	if (mkpath(cpath, sizeof(cpath), p->dir, "cert.pem") == -1 ||
	    mkpath(kpath, sizeof(kpath), p->dir, "key.pem") == -1)
		goto out;
	/* Key first: a cert.pem always has its key beside it. */
	if (write_atomic(kpath, kpem, klen, 0600) == -1 ||
	    write_atomic(cpath, chain, strlen(chain), 0644) == -1) {
		fail(p, "%s: %s", p->dir, strerror(errno));
		goto out;
	}
	if (p->cfg->key_file != NULL &&
	    write_atomic(p->cfg->key_file, kpem, klen, 0600) == -1) {
		fail(p, "%s: %s", p->cfg->key_file, strerror(errno));
		goto out;
	}
	if (p->cfg->cert_file != NULL &&
	    write_atomic(p->cfg->cert_file, chain, strlen(chain), 0644) == -1) {
		fail(p, "%s: %s", p->cfg->cert_file, strerror(errno));
		goto out;
	}
	argv[0] = p->cfg->reload_command;
	argv[1] = p->cfg->cert_file != NULL ? p->cfg->cert_file : cpath;
	argv[2] = NULL;
	run_hook(p->cfg->reload_command, "reload_command", argv);
	rc = 0;
out:
	OPENSSL_cleanse(kpem, klen);
	free(kpem);
	return rc;
}

/* Revoke the certificate in the network's cert.pem, if any. */
static int
revoke_current(struct pass *p, struct acme_client *c, int reason)
{
	char path[PATH_LEN], *pem;
	struct acme_error e = { 0 };
	int rc = 0;

	if (mkpath(path, sizeof(path), p->dir, "cert.pem") == -1 ||
	    (pem = read_all(path)) == NULL)
		return 0;
	if (acme_revoke(c, pem, reason, &e) == -1 &&
	    strcmp(e.type, "alreadyRevoked") != 0) {
		acme_fail(p, "revocation", &e);
		rc = -1;
	} else
		logmsg("network %s: revoked the certificate in %s", p->net.key,
		    path);
	free(pem);
	return rc;
}

/* The names of this device on this network. */
static size_t
device_names(struct pass *p, char names[2][320])
{
	size_t n = 0;

	snprintf(names[n++], 320, "%s.local", p->id);
	if (p->net.domain[0] != '\0')
		snprintf(names[n++], 320, "%s.%s", p->id, p->net.domain);
	return n;
}

/* Is cert.pem valid, for these names, under the pinned root, and not yet
 * due?  Then its renewal time, else 0. */
static time_t
current_ok(struct pass *p, struct acme_client *c, char names[2][320],
    size_t nnames)
{
	char path[PATH_LEN], rpath[PATH_LEN], err[512], *pem;
	X509 *root = NULL;
	time_t t = 0;
	size_t i;

	if (mkpath(path, sizeof(path), p->dir, "cert.pem") == -1 ||
	    mkpath(rpath, sizeof(rpath), p->dir, "root.pem") == -1 ||
	    (pem = read_all(path)) == NULL)
		return 0;
	if (tofu_load(rpath, &root, err, sizeof(err)) != 1)
		goto out;
	for (i = 0; i < nnames; i++)
		if (tofu_verify_chain(pem, root, names[i], err, sizeof(err)) == -1) {
			logmsg("network %s: current certificate unusable: %s",
			    p->net.key, err);
			goto out;
		}
	t = renewal_time(p, c, pem);
	if (t <= time(NULL))
		t = 0;
out:
	X509_free(root);
	free(pem);
	return t;
}

/* A device name changed on this network (4.7): revoke the old name's
 * certificate there, then forget it. */
static int
handle_rename(struct pass *p, struct acme_client *c)
{
	char path[PATH_LEN], cpath[PATH_LEN], *old;
	int rc = 0;

	if (mkpath(path, sizeof(path), p->dir, "name") == -1 ||
	    (old = read_all(path)) == NULL)
		return 0;
	old[strcspn(old, "\n")] = '\0';
	if (strcmp(old, p->id) != 0) {
		logmsg("network %s: device name changed from %s to %s: revoking "
		    "the old name's certificate", p->net.key, old, p->id);
		if (revoke_current(p, c, 4) == -1)	/* superseded */
			rc = -1;
		else if (mkpath(cpath, sizeof(cpath), p->dir, "cert.pem") == 0)
			(void)unlink(cpath);
	}
	free(old);
	return rc;
}

/* The network holds a good certificate: say so in status.json. */
static void
record_success(struct pass *p, time_t next)
{
	char path[PATH_LEN], *cur;
	time_t nb, na;

	(void)mkpath(path, sizeof(path), p->dir, "cert.pem");
	if ((cur = read_all(path)) != NULL && cert_times(cur, &nb, &na) == 0)
		status_set(p, "not_after", json_integer((json_int_t)na));
	free(cur);
	status_set(p, "certificate", json_string(path));
	status_set(p, "renew_at", json_integer((json_int_t)next));
	status_set(p, "last_error", json_string(""));
	status_set(p, "last_success", json_integer((json_int_t)time(NULL)));
	status_save(p);
}

static int
enrol(struct pass *p, time_t *next)
{
	struct acme_client	*c;
	struct acme_order	*o = NULL;
	struct acme_http01	*h = NULL;
	struct acme_error	 e = { 0 };
	char			 names[2][320], herr[256], *pem = NULL, rpath[PATH_LEN];
	const char		*np[2];
	size_t			 n, i;
	time_t			 t, exp;
	long			 wait_ms;
	X509			*root = NULL;
	int			 rc = 1;

	n = device_names(p, names);
	for (i = 0; i < n; i++)
		np[i] = names[i];
	if ((c = client_open(p)) == NULL)
		return 1;
	if (acme_directory(c, &e) == -1) {
		acme_fail(p, "directory", &e);
		goto out;
	}
	if (acme_account_ensure(c, &e) == -1) {
		acme_fail(p, "account", &e);
		goto out;
	}
	status_set(p, "account", json_string(acme_account_url(c)));
	if (handle_rename(p, c) == -1)
		goto out;
	if ((t = current_ok(p, c, names, n)) != 0) {
		*next = t;
		rc = 0;
		goto done;
	}
	if ((h = acme_http01_start(p->cfg->http01_address, p->cfg->http01_port,
	    herr, sizeof(herr))) == NULL) {
		fail(p, "http-01 responder: %s", herr);
		goto out;
	}
	logmsg("network %s: ordering a certificate for %s%s%s", p->net.key,
	    names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "");
	if ((o = acme_order_new(c, np, n, &e)) == NULL) {
		acme_fail(p, "new order", &e);
		goto out;
	}
	if (acme_order_authorize_http01(c, o, h, 300000, &e) == -1) {
		acme_fail(p, "http-01", &e);
		goto out;
	}
	/* Operator approval: wait until the order expires, not less. */
	exp = acme_order_expires(o);
	wait_ms = exp > time(NULL) ? (long)(exp - time(NULL)) * 1000 : 3600000;
	if (p->cfg->approval_timeout > 0 &&
	    wait_ms > (long)p->cfg->approval_timeout * 1000)
		wait_ms = (long)p->cfg->approval_timeout * 1000;
	logmsg("network %s: finalizing; waiting up to %ld s for the operator",
	    p->net.key, wait_ms / 1000);
	if (acme_order_finalize(c, o, NULL, wait_ms, &e) == -1) {
		acme_fail(p, "finalize", &e);
		goto out;
	}
	if (acme_order_certificate(c, o, &pem, &e) == -1) {
		acme_fail(p, "certificate", &e);
		goto out;
	}
	(void)mkpath(rpath, sizeof(rpath), p->dir, "root.pem");
	if (tofu_load(rpath, &root, herr, sizeof(herr)) != 1 ||
	    tofu_verify_chain(pem, root, names[0], herr, sizeof(herr)) == -1) {
		fail(p, "the issued certificate does not verify: %s", herr);
		goto out;
	}
	if (install(p, pem, acme_order_key(o)) == -1)
		goto out;
	(void)mkpath(rpath, sizeof(rpath), p->dir, "name");
	if (write_atomic(rpath, p->id, strlen(p->id), 0644) == -1) {
		fail(p, "%s: %s", rpath, strerror(errno));
		goto out;
	}
	*next = renewal_time(p, c, pem);
	logmsg("network %s: certificate installed for %s", p->net.key, names[0]);
	rc = 0;
done:
	record_success(p, *next);
out:
	X509_free(root);
	free(pem);
	acme_order_free(o);
	if (h != NULL)
		acme_http01_stop(h);
	acme_client_free(c);
	return rc;
}

/* One pass: identify, discover, check the root, enrol or renew.  0 (and
 * when to come back), 1 on an error, 3 when there is no server. */
static int
pass_once(const struct agent_config *cfg, time_t *next)
{
	struct pass p = { .cfg = cfg };
	char err[1024];
	int rc;

	*next = time(NULL) + cfg->retry_seconds;
	if (open_network(&p, err, sizeof(err)) == -1) {
		logmsg("%s", err);
		return 1;
	}
	if ((rc = discover(&p)) == 0 && (rc = check_root(&p)) == 0)
		rc = enrol(&p, next);
	if (rc != 0)
		*next = time(NULL) + cfg->retry_seconds;
	status_save(&p);
	json_decref(p.status);
	return rc;
}

/* ---------------------------------------------------------- commands */

static int
cmd_run(const struct agent_config *cfg)
{
	struct sigaction sa;
	sigset_t set, old;
	struct timespec ts;
	time_t next, now;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	if (sigaction(SIGTERM, &sa, NULL) == -1 || sigaction(SIGINT, &sa, NULL) == -1) {
		logmsg("sigaction: %s", strerror(errno));
		return 1;
	}
	sa.sa_handler = on_hup;
	if (sigaction(SIGHUP, &sa, NULL) == -1) {
		logmsg("sigaction: %s", strerror(errno));
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		busy = 1;
		(void)pass_once(cfg, &next);
		/* Idle: signals only through sigtimedwait, no race. */
		if (sigprocmask(SIG_BLOCK, &set, &old) == -1)
			return 1;
		busy = 0;
		now = time(NULL);
		ts.tv_sec = next > now ? next - now : 1;
		ts.tv_nsec = 0;
		logmsg("next pass in %ld s", (long)ts.tv_sec);
		sig = sigtimedwait(&set, NULL, &ts);
		(void)sigprocmask(SIG_SETMASK, &old, NULL);
		if (sig == SIGTERM || sig == SIGINT) {
			logmsg("stopping");
			return 0;
		}
	}
}

static void
print_time(const char *label, json_t *v)
{
	char buf[64];
	struct tm tm;
	time_t t;

	if (!json_is_integer(v))
		return;
	t = (time_t)json_integer_value(v);
	if (gmtime_r(&t, &tm) != NULL &&
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
		printf("  %-17s %s\n", label, buf);
}

static int
cmd_status(const struct agent_config *cfg, int as_json)
{
	char path[PATH_LEN], rpath[PATH_LEN], fp[96], err[256];
	json_t *all, *st, *srv;
	struct dirent *de;
	X509 *root;
	DIR *d;
	size_t i;
	int rc = 0;

	if ((all = json_array()) == NULL)
		return 1;
	if ((d = opendir(cfg->state_dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, "net-", 4) != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s/status.json",
			    cfg->state_dir, de->d_name);
			if ((st = json_load_file(path, 0, NULL)) == NULL)
				continue;
			snprintf(rpath, sizeof(rpath), "%s/%s/root.pem",
			    cfg->state_dir, de->d_name);
			root = NULL;
			if (tofu_load(rpath, &root, err, sizeof(err)) == 1) {
				tofu_fingerprint(root, fp);
				(void)json_object_set_new(st, "root_fingerprint",
				    json_string(fp));
			}
			X509_free(root);
			(void)json_array_append_new(all, st);
		}
		closedir(d);
	}
	if (as_json) {
		if (json_dumpf(all, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) == -1)
			rc = 1;
		printf("\n");
	} else if (json_array_size(all) == 0)
		printf("no network known yet\n");
	json_array_foreach(all, i, st) {
		if (as_json)
			break;
		srv = json_object_get(st, "server");
		printf("network %s (%s, domain \"%s\")\n",
		    json_string_value(json_object_get(json_object_get(st,
		    "network"), "key")) ?: "?",
		    json_string_value(json_object_get(json_object_get(st,
		    "network"), "interface")) ?: "?",
		    json_string_value(json_object_get(json_object_get(st,
		    "network"), "domain")) ?: "");
		printf("  %-17s %s\n", "device", json_string_value(
		    json_object_get(st, "device_id")) ?: "");
		printf("  %-17s %s:%d (%s)\n", "server", json_string_value(
		    json_object_get(srv, "name")) ?: "none",
		    (int)json_integer_value(json_object_get(srv, "port")),
		    json_string_value(json_object_get(srv, "source")) ?: "-");
		printf("  %-17s %s\n", "root", json_string_value(
		    json_object_get(st, "root_fingerprint")) ?: "not pinned");
		if (json_object_get(st, "root_change") != NULL)
			printf("  %-17s %s (iotca-agent trust --accept)\n",
			    "ROOT CHANGED", json_string_value(
			    json_object_get(st, "root_change")) ?: "");
		printf("  %-17s %s\n", "certificate", json_string_value(
		    json_object_get(st, "certificate")) ?: "none");
		print_time("expires", json_object_get(st, "not_after"));
		print_time("renews", json_object_get(st, "renew_at"));
		printf("  %-17s %s\n", "last error", json_string_value(
		    json_object_get(st, "last_error")) ?: "");
	}
	json_decref(all);
	return rc;
}

/* Client devices (3.5): discover, pin, export the root. */
static int
cmd_trust(const struct agent_config *cfg, const char *out)
{
	struct pass p = { .cfg = cfg };
	char err[1024], rpath[PATH_LEN], nick[128], *pem;
	pid_t pid;
	int rc, st;

	if (open_network(&p, err, sizeof(err)) == -1) {
		logmsg("%s", err);
		return 1;
	}
	if ((rc = discover(&p)) == 0)
		rc = check_root(&p);
	status_save(&p);
	json_decref(p.status);
	if (rc != 0)
		return rc;
	(void)mkpath(rpath, sizeof(rpath), p.dir, "root.pem");
	if (out == NULL)
		out = cfg->root_export;
	if (out != NULL) {
		if ((pem = read_all(rpath)) == NULL ||
		    write_atomic(out, pem, strlen(pem), 0644) == -1) {
			logmsg("%s: %s", out, strerror(errno));
			free(pem);
			return 1;
		}
		free(pem);
		logmsg("network %s: root exported to %s", p.net.key, out);
	}
	if (cfg->nss_db != NULL) {
		snprintf(nick, sizeof(nick), "iotca local root %s", p.net.key);
		if ((pid = fork()) == 0) {
			char db[PATH_LEN];

			snprintf(db, sizeof(db), "sql:%s", cfg->nss_db);
			execlp("certutil", "certutil", "-A", "-d", db, "-n", nick,
			    "-t", "C,,", "-i", rpath, (char *)NULL);
			_exit(127);
		}
		if (pid == -1 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			logmsg("certutil could not add the root to %s", cfg->nss_db);
			return 1;
		}
		logmsg("network %s: root added to the NSS database %s as \"%s\"",
		    p.net.key, cfg->nss_db, nick);
	}
	printf("%s\n", rpath);
	return 0;
}

/* An operator accepts the root a network's server now serves (4.8). */
static int
cmd_accept(const struct agent_config *cfg, const char *network)
{
	char dir[PATH_LEN], from[PATH_LEN], to[PATH_LEN];
	const char *k = strncmp(network, "net-", 4) == 0 ? network + 4 : network;
	size_t i;

	for (i = 0; k[i] != '\0'; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			break;
	if (i != 16 || k[i] != '\0') {
		logmsg("%s: not a network key (16 hex digits; iotca-agent status)",
		    network);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/net-%s", cfg->state_dir, k);
	if (mkpath(from, sizeof(from), dir, "root-new.pem") == -1 ||
	    mkpath(to, sizeof(to), dir, "root.pem") == -1)
		return 1;
	if (rename(from, to) == -1) {
		logmsg("network %s: no new root to accept (%s)", k, strerror(errno));
		return 1;
	}
	logmsg("network %s: new root accepted", k);
	return 0;
}

/* Factory reset of the current network (4.5): revoke, then delete. */
static int
cmd_reset(const struct agent_config *cfg)
{
	static const char *const files[] = { "cert.pem", "key.pem",
	    "account.key", "name", "status.json" };
	struct pass p = { .cfg = cfg };
	struct acme_client *c = NULL;
	struct acme_error e = { 0 };
	char err[1024], path[PATH_LEN];
	size_t i;
	int rc = 0;

	if (open_network(&p, err, sizeof(err)) == -1) {
		logmsg("%s", err);
		return 1;
	}
	if (discover(&p) == 0 && check_root(&p) == 0 &&
	    (c = client_open(&p)) != NULL && acme_account_ensure(c, &e) == 0) {
		if (revoke_current(&p, c, 0) == -1)
			rc = 1;
	} else {
		logmsg("network %s: server not reachable; nothing revoked",
		    p.net.key);
		rc = 1;
	}
	acme_client_free(c);
	json_decref(p.status);
	p.status = NULL;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (mkpath(path, sizeof(path), p.dir, files[i]) == 0 &&
		    unlink(path) == -1 && errno != ENOENT)
			rc = 1;
	if (cfg->cert_file != NULL && unlink(cfg->cert_file) == -1 && errno != ENOENT)
		rc = 1;
	if (cfg->key_file != NULL && unlink(cfg->key_file) == -1 && errno != ENOENT)
		rc = 1;
	logmsg("network %s: keys and certificates deleted", p.net.key);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: iotca-agent [-c FILE] run\n"
	    "       iotca-agent [-c FILE] enrol --once\n"
	    "       iotca-agent [-c FILE] status [--json]\n"
	    "       iotca-agent [-c FILE] trust [--out PATH]\n"
	    "       iotca-agent [-c FILE] trust --accept NETWORK\n"
	    "       iotca-agent [-c FILE] reset\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct agent_config cfg;
	const char *conf = AGENT_DEFAULT_CONFIG, *cmd;
	char err[1024];
	time_t next;
	int i = 1, rc;

	if (i + 1 < argc && strcmp(argv[i], "-c") == 0) {
		conf = argv[i + 1];
		i += 2;
	}
	if (i >= argc)
		usage();
	cmd = argv[i++];
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (agent_config_load(conf, &cfg, err, sizeof(err)) == -1) {
		logmsg("%s", err);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		logmsg("curl_global_init failed");
		agent_config_free(&cfg);
		return 1;
	}
	umask(077);
	if (strcmp(cmd, "run") == 0 && i == argc)
		rc = cmd_run(&cfg);
	else if (strcmp(cmd, "enrol") == 0 && i + 1 == argc &&
	    strcmp(argv[i], "--once") == 0)
		rc = pass_once(&cfg, &next);
	else if (strcmp(cmd, "status") == 0 && (i == argc || (i + 1 == argc &&
	    strcmp(argv[i], "--json") == 0)))
		rc = cmd_status(&cfg, i < argc);
	else if (strcmp(cmd, "trust") == 0 && i == argc)
		rc = cmd_trust(&cfg, NULL);
	else if (strcmp(cmd, "trust") == 0 && i + 2 == argc &&
	    strcmp(argv[i], "--out") == 0)
		rc = cmd_trust(&cfg, argv[i + 1]);
	else if (strcmp(cmd, "trust") == 0 && i + 2 == argc &&
	    strcmp(argv[i], "--accept") == 0)
		rc = cmd_accept(&cfg, argv[i + 1]);
	else if (strcmp(cmd, "reset") == 0 && i == argc)
		rc = cmd_reset(&cfg);
	else {
		agent_config_free(&cfg);
		curl_global_cleanup();
		usage();
		return 2;
	}
	agent_config_free(&cfg);
	curl_global_cleanup();
	return rc;
}
