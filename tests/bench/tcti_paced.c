/*
 * libtss2-tcti-paced: a TCTI for tests and benchmarks that makes a software
 * TPM as slow as a chip at signing.  It forwards every command to another
 * TCTI and, for TPM2_Sign, holds the response until delay_ms after the
 * command was sent, so that whatever sits above (tpm2-abrmd, ESYS, the
 * OpenSSL provider, the signer) sees a chip's latency.  Every other command
 * passes straight through.  Never installed and never linked into a daemon.
 *
 * Configuration (what follows "paced:" in a TCTI string):
 *
 *	delay_ms=N,next=NAME:CONF
 *
 * Options come first, separated by ','; "next=" must be the last one and
 * takes the whole rest of the string verbatim, so the next TCTI's own ':'
 * and ',' survive.  delay_ms is 0 to 60000 (default 35).  For example,
 * between tpm2-abrmd and swtpm:
 *
 *	LD_LIBRARY_PATH=BUILD/tests tpm2-abrmd \
 *	    --tcti=paced:delay_ms=35,next=swtpm:host=127.0.0.1,port=2321
 *
 * A receive with a timeout shorter than what is left of the hold sleeps for
 * the timeout and says TSS2_TCTI_RC_TRY_AGAIN, as a chip still busy would;
 * the next receive continues the same hold.  Cancel ends the hold.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tss2/tss2_tcti.h>
#include <tss2/tss2_tctildr.h>

#define PACED_MAGIC		0x7061636564746369ULL	/* "pacedtci" */
#define PACED_DEFAULT_MS	35
#define PACED_MAX_MS		60000
#define CMD_HEADER_LEN		10

struct paced {
	TSS2_TCTI_CONTEXT_COMMON_V2	 common;
	TSS2_TCTI_CONTEXT		*next;
	uint64_t			 delay_ns;
	uint64_t			 release_ns;	/* hold until; 0: none */
};

static uint64_t
mono_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct paced *
paced_of(TSS2_TCTI_CONTEXT *ctx)
{
	struct paced *p = (struct paced *)ctx;

	if (p == NULL || p->common.v1.magic != PACED_MAGIC || p->next == NULL)
		return NULL;
	return p;
}

static TSS2_RC
paced_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *cmd)
{
	struct paced *p = paced_of(ctx);
	uint32_t cc;
	TSS2_RC rc;

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (cmd == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	rc = Tss2_Tcti_Transmit(p->next, size, cmd);
	if (rc != TSS2_RC_SUCCESS)
		return rc;
	p->release_ns = 0;
	if (size >= CMD_HEADER_LEN) {
		cc = (uint32_t)cmd[6] << 24 | (uint32_t)cmd[7] << 16 |
		    (uint32_t)cmd[8] << 8 | cmd[9];
		if (cc == TPM2_CC_Sign && p->delay_ns > 0)
			p->release_ns = mono_ns() + p->delay_ns;
	}
	return TSS2_RC_SUCCESS;
}

static TSS2_RC
paced_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *resp,
    int32_t timeout)
{
	struct paced *p = paced_of(ctx);
	uint64_t now, left, waited;
	int32_t rest = timeout;
	TSS2_RC rc;

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	if (size == NULL)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (p->release_ns != 0 && (now = mono_ns()) < p->release_ns) {
		left = p->release_ns - now;
		if (timeout != TSS2_TCTI_TIMEOUT_BLOCK && timeout >= 0 &&
		    (uint64_t)timeout * 1000000ULL < left) {
			sleep_ns((uint64_t)timeout * 1000000ULL);
			return TSS2_TCTI_RC_TRY_AGAIN;
		}
		sleep_ns(left);
		if (timeout != TSS2_TCTI_TIMEOUT_BLOCK && timeout >= 0) {
			waited = (left + 999999) / 1000000;
			rest = timeout > (int32_t)waited ?
			    timeout - (int32_t)waited : 0;
		}
	}
	rc = Tss2_Tcti_Receive(p->next, size, resp, rest);
	/* A size query (no buffer) or a timeout keeps the response coming. */
	if (rc == TSS2_RC_SUCCESS && resp != NULL)
		p->release_ns = 0;
	return rc;
}

static void
paced_finalize(TSS2_TCTI_CONTEXT *ctx)
{
	struct paced *p = paced_of(ctx);

	if (p == NULL)
		return;
	Tss2_TctiLdr_Finalize(&p->next);
	p->common.v1.magic = 0;
}

static TSS2_RC
paced_cancel(TSS2_TCTI_CONTEXT *ctx)
{
	struct paced *p = paced_of(ctx);

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	p->release_ns = 0;
	return Tss2_Tcti_Cancel(p->next);
}

static TSS2_RC
paced_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *h,
    size_t *n)
{
	struct paced *p = paced_of(ctx);

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	return Tss2_Tcti_GetPollHandles(p->next, h, n);
}

static TSS2_RC
paced_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
	struct paced *p = paced_of(ctx);

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	return Tss2_Tcti_SetLocality(p->next, locality);
}

static TSS2_RC
paced_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *handle, uint8_t sticky)
{
	struct paced *p = paced_of(ctx);

	if (p == NULL)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	return Tss2_Tcti_MakeSticky(p->next, handle, sticky);
}

/*
 * Split conf into the delay and the next TCTI's string (a pointer into
 * conf); -1 if it does not follow the syntax in the header comment.
 */
static int
parse_conf(const char *conf, uint64_t *delay_ms, const char **next)
{
	const char *s = conf, *end;
	char *num_end;
	unsigned long v;

	*delay_ms = PACED_DEFAULT_MS;
	*next = NULL;
	if (conf == NULL)
		return -1;
	while (*s != '\0') {
		if (strncmp(s, "next=", 5) == 0) {
			*next = s + 5;
			return **next != '\0' ? 0 : -1;
		}
		if ((end = strchr(s, ',')) == NULL)
			end = s + strlen(s);
		if (strncmp(s, "delay_ms=", 9) == 0) {
			errno = 0;
			v = strtoul(s + 9, &num_end, 10);
			if (errno != 0 || num_end != end || num_end == s + 9 ||
			    v > PACED_MAX_MS)
				return -1;
			*delay_ms = v;
		} else
			return -1;
		s = *end == ',' ? end + 1 : end;
	}
	return -1;	/* no next= */
}

TSS2_RC Tss2_Tcti_Paced_Init(TSS2_TCTI_CONTEXT *, size_t *, const char *);

TSS2_RC
Tss2_Tcti_Paced_Init(TSS2_TCTI_CONTEXT *ctx, size_t *size, const char *conf)
{
	struct paced *p = (struct paced *)ctx;
	const char *next;
	uint64_t delay_ms;
	TSS2_RC rc;

	if (size == NULL)
		return TSS2_TCTI_RC_BAD_VALUE;
	if (ctx == NULL) {
		*size = sizeof(struct paced);
		return TSS2_RC_SUCCESS;
	}
	if (*size < sizeof(struct paced))
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	if (parse_conf(conf, &delay_ms, &next) == -1) {
		fprintf(stderr, "tcti-paced: bad configuration \"%s\": want "
		    "delay_ms=N,next=NAME:CONF\n", conf != NULL ? conf : "");
		return TSS2_TCTI_RC_BAD_VALUE;
	}
	memset(p, 0, sizeof(*p));
	if ((rc = Tss2_TctiLdr_Initialize(next, &p->next)) != TSS2_RC_SUCCESS)
		return rc;
	p->delay_ns = delay_ms * 1000000ULL;
	p->common.v1.magic = PACED_MAGIC;
	p->common.v1.version = 2;
	p->common.v1.transmit = paced_transmit;
	p->common.v1.receive = paced_receive;
	p->common.v1.finalize = paced_finalize;
	p->common.v1.cancel = paced_cancel;
	p->common.v1.getPollHandles = paced_poll_handles;
	p->common.v1.setLocality = paced_set_locality;
	p->common.makeSticky = paced_make_sticky;
	return TSS2_RC_SUCCESS;
}

static const TSS2_TCTI_INFO paced_info = {
	.version = 2,
	.name = "tcti-paced",
	.description = "Forwards to another TCTI; holds TPM2_Sign responses "
	    "for a chip-like latency (tests only).",
	.config_help = "delay_ms=N,next=NAME:CONF (next= last, taken verbatim)",
	.init = Tss2_Tcti_Paced_Init,
};

const TSS2_TCTI_INFO *Tss2_Tcti_Info(void);

const TSS2_TCTI_INFO *
Tss2_Tcti_Info(void)
{
	return &paced_info;
}
