/*
 * tpmseal: sealed secret and NV counter through tpm2-tss ESAPI (see
 * tpmseal.h).  Transient objects and sessions are flushed before each
 * function returns: a TPM has only a few slots, and the OpenSSL provider
 * needs them too.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpmseal.h"

#define SEAL_MAGIC	"IOTCASL1"	/* file: magic, TPM2B_PUBLIC, TPM2B_PRIVATE */
#define SEAL_MAGIC_LEN	8
#define SEAL_FILE_MAX	4096

struct tpm {
	TSS2_TCTI_CONTEXT	*tcti;
	ESYS_CONTEXT		*esys;
	uint32_t		 parent;	/* persistent storage key, or 0 */
	/* The counter's ESYS handle, resolved once (TPM2_NV_ReadPublic): a
	 * read is then one TPM command, which matters when the TPM is busy
	 * signing for tens of milliseconds per command. */
	ESYS_TR			 counter;
	uint32_t		 counter_index;
};

static int tpm_fail(char *, size_t, TSS2_RC, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* A TPM format-1 response code for a wrong authorization value. */
static int
bad_auth(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER ||
	    (rc & TPM2_RC_FMT1) == 0)
		return 0;
	rc &= TPM2_RC_FMT1 | 0x3f;
	return rc == TPM2_RC_AUTH_FAIL || rc == TPM2_RC_BAD_AUTH;
}

/* One line: what we were doing, then tpm2-tss's decoding of the code. */
static int
tpm_fail(char *err, size_t errlen, TSS2_RC rc, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (rc == TSS2_RC_SUCCESS)
		snprintf(err, errlen, "TPM: %s", what);
	else
		snprintf(err, errlen, "TPM: %s: %s%s", what, Tss2_RC_Decode(rc),
		    bad_auth(rc) ? " (the owner hierarchy's authorization is "
		    "wrong or missing: [key] owner_auth_file names the file "
		    "holding it)" : "");
	return -1;
}

struct tpm *
tpm_open(const char *tcti, uint32_t parent, const char *owner_auth, char *err,
    size_t errlen)
{
	struct tpm *t;
	TPM2B_AUTH auth;
	TSS2_RC rc;

	if (tcti == NULL || *tcti == '\0')
		tcti = getenv("TPM2OPENSSL_TCTI");
	if (tcti != NULL && *tcti == '\0')
		tcti = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->parent = parent;
	t->counter = ESYS_TR_NONE;
	if ((rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti)) != TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "cannot reach the TPM through %s",
		    tcti != NULL ? tcti : "the default TCTI");
		free(t);
		return NULL;
	}
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) != TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "ESAPI initialisation");
		Tss2_TctiLdr_Finalize(&t->tcti);
		free(t);
		return NULL;
	}
	if (owner_auth != NULL && *owner_auth != '\0') {
		memset(&auth, 0, sizeof(auth));
		if (strlen(owner_auth) > TPMSEAL_MAX_OWNER_AUTH ||
		    strlen(owner_auth) > sizeof(auth.buffer)) {
			snprintf(err, errlen, "TPM: the owner authorization is "
			    "longer than %d bytes", TPMSEAL_MAX_OWNER_AUTH);
			tpm_close(t);
			return NULL;
		}
		auth.size = (UINT16)strlen(owner_auth);
		memcpy(auth.buffer, owner_auth, auth.size);
		rc = Esys_TR_SetAuth(t->esys, ESYS_TR_RH_OWNER, &auth);
		OPENSSL_cleanse(&auth, sizeof(auth));
		if (rc != TSS2_RC_SUCCESS) {
			tpm_fail(err, errlen, rc, "set the owner authorization");
			tpm_close(t);
			return NULL;
		}
	}
	return t;
}

void
tpm_close(struct tpm *t)
{
	if (t == NULL)
		return;
	Esys_Finalize(&t->esys);
	Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

/*
 * The parent of the sealed object: the persistent storage key if one is
 * configured (no owner authorization needed), else an ECC P-256 storage key
 * re-derived from the owner seed each time (same template, same key), so
 * nothing about it needs storing.
 */
static int
load_parent(struct tpm *t, ESYS_TR *primary, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;

	if (t->parent != 0) {
		rc = Esys_TR_FromTPMPublic(t->esys, t->parent, ESYS_TR_NONE,
		    ESYS_TR_NONE, ESYS_TR_NONE, primary);
		if (rc != TSS2_RC_SUCCESS)
			return tpm_fail(err, errlen, rc, "the storage key at "
			    "0x%08x ([key] parent)", (unsigned)t->parent);
		return 0;
	}
	memset(&sens, 0, sizeof(sens));
	memset(&tmpl, 0, sizeof(tmpl));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	tmpl.publicArea.type = TPM2_ALG_ECC;
	tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.objectAttributes = TPMA_OBJECT_RESTRICTED |
	    TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
	    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA;
	tmpl.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	tmpl.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	tmpl.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	tmpl.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	tmpl.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	tmpl.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, primary,
	    NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "create the storage primary key");
	return 0;
}

/* A session salted with the primary, so parameters can travel encrypted. */
static int
start_session(struct tpm *t, ESYS_TR primary, ESYS_TR *session, char *err,
    size_t errlen)
{
	TPMT_SYM_DEF sym;
	TSS2_RC rc;

	memset(&sym, 0, sizeof(sym));
	sym.algorithm = TPM2_ALG_AES;
	sym.keyBits.aes = 128;
	sym.mode.aes = TPM2_ALG_CFB;
	rc = Esys_StartAuthSession(t->esys, primary, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_HMAC, &sym,
	    TPM2_ALG_SHA256, session);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "start an encrypted session");
	return 0;
}

/* The sealed object's parent and a session salted with it. */
static int
parent_session(struct tpm *t, ESYS_TR *parent, ESYS_TR *session, char *err,
    size_t errlen)
{
	if (load_parent(t, parent, err, errlen) == -1)
		return -1;
	return start_session(t, *parent, session, err, errlen);
}

static void
flush(struct tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

/* Let go of the parent: a persistent key stays, a primary is flushed. */
static void
release_parent(struct tpm *t, ESYS_TR *h)
{
	if (t->parent != 0) {
		if (*h != ESYS_TR_NONE)
			(void)Esys_TR_Close(t->esys, h);
		*h = ESYS_TR_NONE;
	} else
		flush(t, h);
}

static int
write_sealed(const char *path, const TPM2B_PUBLIC *pub,
    const TPM2B_PRIVATE *priv, char *err, size_t errlen)
{
	unsigned char buf[SEAL_FILE_MAX];
	size_t off = SEAL_MAGIC_LEN;
	ssize_t w;
	int fd;

	memcpy(buf, SEAL_MAGIC, SEAL_MAGIC_LEN);
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) !=
	    TSS2_RC_SUCCESS || Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf,
	    sizeof(buf), &off) != TSS2_RC_SUCCESS) {
		snprintf(err, errlen, "%s: cannot encode the sealed object", path);
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	w = write(fd, buf, off);
	if (w != (ssize_t)off || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, w == -1 || w == (ssize_t)off ?
		    strerror(errno) : "short write");
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

static int
read_sealed(const char *path, TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv,
    char *err, size_t errlen)
{
	unsigned char buf[SEAL_FILE_MAX];
	size_t off = SEAL_MAGIC_LEN;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	memset(pub, 0, sizeof(*pub));
	memset(priv, 0, sizeof(*priv));
	if (n < SEAL_MAGIC_LEN || memcmp(buf, SEAL_MAGIC, SEAL_MAGIC_LEN) != 0 ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, (size_t)n, &off, pub) !=
	    TSS2_RC_SUCCESS || Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, (size_t)n,
	    &off, priv) != TSS2_RC_SUCCESS || off != (size_t)n) {
		snprintf(err, errlen, "%s: not an iotca sealed object", path);
		return -1;
	}
	return 0;
}

int
tpm_seal_new(struct tpm *t, const char *path, const unsigned char *secret,
    size_t len, char *err, size_t errlen)
{
	ESYS_TR primary = ESYS_TR_NONE, session = ESYS_TR_NONE;
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl, *pub = NULL;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;
	int ret = -1;

	if (len == 0 || len > TPMSEAL_MAX_SECRET ||
	    len > sizeof(sens.sensitive.data.buffer)) {
		snprintf(err, errlen, "TPM: secret of %zu bytes cannot be sealed",
		    len);
		return -1;
	}
	memset(&sens, 0, sizeof(sens));
	memset(&tmpl, 0, sizeof(tmpl));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	sens.sensitive.data.size = (UINT16)len;
	memcpy(sens.sensitive.data.buffer, secret, len);
	/* A sealed data object: no sign, no decrypt, not duplicable. */
	tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
	tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM |
	    TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_USERWITHAUTH |
	    TPMA_OBJECT_NODA;
	tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;

	if (parent_session(t, &primary, &session, err, errlen) == -1)
		goto out;
	/* Encrypt the command's first parameter: the secret. */
	if ((rc = Esys_TRSess_SetAttributes(t->esys, session,
	    TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION, 0xff)) !=
	    TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "session attributes");
		goto out;
	}
	rc = Esys_Create(t->esys, primary, session, ESYS_TR_NONE, ESYS_TR_NONE,
	    &sens, &tmpl, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "seal");
		goto out;
	}
	ret = write_sealed(path, pub, priv, err, errlen);
out:
	OPENSSL_cleanse(&sens, sizeof(sens));
	Esys_Free(pub);
	Esys_Free(priv);
	flush(t, &session);
	release_parent(t, &primary);
	return ret;
}

int
tpm_unseal(struct tpm *t, const char *path, unsigned char *out,
    size_t *outlen, char *err, size_t errlen)
{
	ESYS_TR primary = ESYS_TR_NONE, session = ESYS_TR_NONE,
	    obj = ESYS_TR_NONE;
	TPM2B_SENSITIVE_DATA *data = NULL;
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	TSS2_RC rc;
	int ret = -1;

	if (read_sealed(path, &pub, &priv, err, errlen) == -1)
		return -1;
	if (parent_session(t, &primary, &session, err, errlen) == -1)
		goto out;
	if ((rc = Esys_Load(t->esys, primary, session, ESYS_TR_NONE,
	    ESYS_TR_NONE, &priv, &pub, &obj)) != TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "%s: load (sealed by another TPM?)",
		    path);
		goto out;
	}
	/* Encrypt the response's first parameter: the secret. */
	if ((rc = Esys_TRSess_SetAttributes(t->esys, session,
	    TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xff)) !=
	    TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "session attributes");
		goto out;
	}
	if ((rc = Esys_Unseal(t->esys, obj, session, ESYS_TR_NONE,
	    ESYS_TR_NONE, &data)) != TSS2_RC_SUCCESS) {
		tpm_fail(err, errlen, rc, "%s: unseal", path);
		goto out;
	}
	if (data->size == 0 || data->size > TPMSEAL_MAX_SECRET) {
		snprintf(err, errlen, "TPM: %s: unsealed %u bytes", path,
		    (unsigned int)data->size);
		goto out;
	}
	memcpy(out, data->buffer, data->size);
	*outlen = data->size;
	ret = 0;
out:
	if (data != NULL) {
		OPENSSL_cleanse(data, sizeof(*data));
		Esys_Free(data);
	}
	flush(t, &obj);
	flush(t, &session);
	release_parent(t, &primary);
	return ret;
}

static int
nv_handle(struct tpm *t, uint32_t index, ESYS_TR *nv, char *err, size_t errlen)
{
	TSS2_RC rc;

	rc = Esys_TR_FromTPMPublic(t->esys, index, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, nv);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "NV index 0x%08x", index);
	return 0;
}

/* The counter's handle, kept for the next time; not to be closed. */
static int
counter_handle(struct tpm *t, uint32_t index, ESYS_TR *nv, char *err,
    size_t errlen)
{
	if (t->counter != ESYS_TR_NONE && t->counter_index != index) {
		(void)Esys_TR_Close(t->esys, &t->counter);
		t->counter = ESYS_TR_NONE;
	}
	if (t->counter == ESYS_TR_NONE) {
		if (nv_handle(t, index, &t->counter, err, errlen) == -1) {
			t->counter = ESYS_TR_NONE;
			return -1;
		}
		t->counter_index = index;
	}
	*nv = t->counter;
	return 0;
}

/* Is the index defined?  Asked of the capability list, so that an absent
 * index is an answer rather than an error tpm2-tss would log. */
static int
index_defined(struct tpm *t, uint32_t index, char *err, size_t errlen)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;
	int found;

	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, TPM2_CAP_HANDLES, index, 1, &more, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "list NV indices");
	found = cap->data.handles.count == 1 &&
	    cap->data.handles.handle[0] == index;
	Esys_Free(cap);
	return found;
}

/* The index is there: is it a counter? */
static int
is_counter(struct tpm *t, uint32_t index, char *err, size_t errlen)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	ESYS_TR nv;
	TSS2_RC rc;
	int type;

	if (nv_handle(t, index, &nv, err, errlen) == -1)
		return -1;
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &pub, NULL);
	(void)Esys_TR_Close(t->esys, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "NV index 0x%08x", index);
	type = (pub->nvPublic.attributes & TPMA_NV_TPM2_NT_MASK) >>
	    TPMA_NV_TPM2_NT_SHIFT;
	Esys_Free(pub);
	if (type != TPM2_NT_COUNTER) {
		snprintf(err, errlen, "TPM: NV index 0x%08x is in use and is not "
		    "a counter: choose another [audit] nv_index", index);
		return -1;
	}
	return 0;
}

int
tpm_counter_define(struct tpm *t, uint32_t index, char *err, size_t errlen)
{
	TPM2B_NV_PUBLIC pub;
	TPM2B_AUTH auth;
	ESYS_TR nv = ESYS_TR_NONE;
	uint64_t v;
	TSS2_RC rc;
	int have;

	if ((have = index_defined(t, index, err, errlen)) == -1)
		return -1;
	if (have)
		return is_counter(t, index, err, errlen);
	memset(&pub, 0, sizeof(pub));
	memset(&auth, 0, sizeof(auth));
	pub.nvPublic.nvIndex = index;
	pub.nvPublic.nameAlg = TPM2_ALG_SHA256;
	pub.nvPublic.attributes = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) |
	    TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHWRITE |
	    TPMA_NV_AUTHREAD | TPMA_NV_NO_DA;
	pub.nvPublic.dataSize = 8;
	rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, &auth, &pub, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "define NV counter 0x%08x", index);
	(void)Esys_TR_Close(t->esys, &nv);
	/* A new counter reads as uninitialised until its first increment,
	 * which sets it to the highest count this TPM has ever had. */
	return tpm_counter_increment(t, index, &v, err, errlen);
}

int
tpm_counter_read(struct tpm *t, uint32_t index, uint64_t *value, char *err,
    size_t errlen)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	ESYS_TR nv;
	TSS2_RC rc;
	size_t i;

	if (counter_handle(t, index, &nv, err, errlen) == -1)
		return -1;
	rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, 8, 0, &data);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "read NV counter 0x%08x", index);
	if (data->size != 8) {
		Esys_Free(data);
		snprintf(err, errlen, "TPM: NV counter 0x%08x: %u bytes", index,
		    (unsigned int)data->size);
		return -1;
	}
	/* Counters read big-endian. */
	*value = 0;
	for (i = 0; i < 8; i++)
		*value = (*value << 8) | data->buffer[i];
	Esys_Free(data);
	return 0;
}

int
tpm_counter_increment(struct tpm *t, uint32_t index, uint64_t *value,
    char *err, size_t errlen)
{
	ESYS_TR nv;
	TSS2_RC rc;

	if (counter_handle(t, index, &nv, err, errlen) == -1)
		return -1;
	rc = Esys_NV_Increment(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "increment NV counter 0x%08x",
		    index);
	return tpm_counter_read(t, index, value, err, errlen);
}
