/*
 * A plain C application of keyfrag, loaded and configured as include/keyfrag.h describes:
 * dlopen the module, take the PKCS#11 3.0 interface from C_GetInterface, pass the config
 * file in C_Initialize's pReserved ("config=PATH"), find a key pair by label, sign with
 * SHA256-RSA-PKCS and SHA256-RSA-PKCS-PSS, and verify both signatures with OpenSSL
 * (libcrypto) using the public key read from the token (CKA_MODULUS, CKA_PUBLIC_EXPONENT).
 * Then OpenSSL encrypts with that key (OAEP-SHA256) and the token decrypts.
 *
 * usage: sign_verify MODULE CONFIG PIN LABEL
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <p11-kit/pkcs11.h>
#include "../../include/keyfrag.h"

/* Debian's p11-kit header is PKCS#11 2.40; these are the 3.0 interface declarations
 * (PKCS#11 3.0 §5.2, "CK_INTERFACE"), declared here only when the header lacks them. */
#ifndef CKF_INTERFACE_FORK_SAFE
typedef struct CK_INTERFACE {
    CK_CHAR *pInterfaceName;
    CK_VOID_PTR pFunctionList;
    CK_FLAGS flags;
} CK_INTERFACE;
typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_RV (*CK_C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR *,
                                   CK_FLAGS);
#endif

static int failures = 0;
static int passed = 0;

static void check(int ok, const char *what, CK_RV rv) {
    if (ok) {
        printf("ok - %s\n", what);
        passed++;
    } else {
        printf("not ok - %s (rv 0x%lx)\n", what, (unsigned long)rv);
        failures++;
    }
}

static CK_OBJECT_HANDLE find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                             const char *label) {
    CK_KEY_TYPE rsa = CKK_RSA;
    CK_ATTRIBUTE tpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &rsa, sizeof rsa},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, tpl, 3) != CKR_OK) return CK_INVALID_HANDLE;
    f->C_FindObjects(s, h, 2, &n);
    f->C_FindObjectsFinal(s);
    return n == 1 ? h[0] : CK_INVALID_HANDLE; /* exactly one */
}

/* A byte-array attribute, allocated (two-call convention); NULL on failure. */
static unsigned char *get_bytes(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                CK_ATTRIBUTE_TYPE type, CK_ULONG *len) {
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK || a.ulValueLen == 0 ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return NULL;
    a.pValue = malloc(a.ulValueLen);
    if (a.pValue == NULL || f->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    *len = a.ulValueLen;
    return a.pValue;
}

/* An OpenSSL RSA public key from the token's modulus and exponent. */
static EVP_PKEY *openssl_key(const unsigned char *n, CK_ULONG nlen, const unsigned char *e,
                             CK_ULONG elen) {
    EVP_PKEY *pkey = NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
    BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (bn && be && bld && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return pkey;
}

/* OpenSSL's verdict on a SHA-256 RSA signature of msg (PKCS#1 v1.5, or PSS with a 32-byte
 * salt and MGF1-SHA256). */
static int openssl_verifies(EVP_PKEY *pkey, int pss, const unsigned char *msg, size_t msglen,
                            const unsigned char *sig, size_t siglen) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md && EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1;
    if (ok && pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
    ok = ok && EVP_DigestVerify(md, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* C_Sign with the two-call convention: a length query, then a buffer too small (which must
 * give CKR_BUFFER_TOO_SMALL with the length and keep the operation active), then the
 * signature. */
static CK_RV token_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_MECHANISM *m,
                        CK_OBJECT_HANDLE key, const unsigned char *msg, CK_ULONG msglen,
                        unsigned char *sig, CK_ULONG *siglen) {
    CK_ULONG cap = *siglen, needed = 0, small = 16;
    CK_RV rv = f->C_SignInit(s, m, key);
    if (rv == CKR_OK) rv = f->C_Sign(s, (CK_BYTE_PTR)msg, msglen, NULL, &needed);
    if (rv != CKR_OK) return rv;
    if (needed > cap) return CKR_BUFFER_TOO_SMALL;
    rv = f->C_Sign(s, (CK_BYTE_PTR)msg, msglen, sig, &small);
    if (rv != CKR_BUFFER_TOO_SMALL || small != needed) return CKR_GENERAL_ERROR;
    *siglen = cap;
    return f->C_Sign(s, (CK_BYTE_PTR)msg, msglen, sig, siglen);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE CONFIG PIN LABEL\n", argv[0]);
        return 2;
    }
    const char *pin = argv[3], *label = argv[4];
    char what[256];
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }

    CK_C_GetInterface get_interface = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    CK_VERSION v30 = {3, 0};
    CK_INTERFACE_PTR iface = NULL;
    CK_RV rv = get_interface ? get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &iface, 0)
                             : CKR_FUNCTION_NOT_SUPPORTED;
    check(rv == CKR_OK && iface != NULL && iface->pFunctionList != NULL,
          "C_GetInterface(\"PKCS 11\", 3.0)", rv);
    if (rv != CKR_OK || iface == NULL || iface->pFunctionList == NULL) return 1;
    /* The 3.0 list begins with the 2.40 functions, in the same order. */
    CK_FUNCTION_LIST_PTR f = (CK_FUNCTION_LIST_PTR)iface->pFunctionList;
    check(f->version.major == 3 && f->version.minor == 0, "the interface is version 3.0", 0);

    char reserved[4096];
    snprintf(reserved, sizeof reserved, "config=%s", argv[2]);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = reserved;
    rv = f->C_Initialize(&args);
    check(rv == CKR_OK, "C_Initialize with pReserved \"config=PATH\"", rv);
    if (rv != CKR_OK) return 1;

    CK_SLOT_ID slots[8];
    CK_ULONG nslots = 8;
    rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
    check(rv == CKR_OK && nslots >= 1, "C_GetSlotList: a slot with a token", rv);
    if (rv != CKR_OK || nslots == 0) return 1;
    CK_SESSION_HANDLE s;
    rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK) rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    check(rv == CKR_OK, "read-only session, user login", rv);

    CK_OBJECT_HANDLE priv = find(f, s, CKO_PRIVATE_KEY, label);
    CK_OBJECT_HANDLE pub = find(f, s, CKO_PUBLIC_KEY, label);
    snprintf(what, sizeof what, "private and public RSA key found by label \"%s\"", label);
    check(priv != CK_INVALID_HANDLE && pub != CK_INVALID_HANDLE, what, 0);
    if (priv == CK_INVALID_HANDLE || pub == CK_INVALID_HANDLE) return 1;

    CK_ULONG nlen = 0, elen = 0, pnlen = 0;
    unsigned char *n = get_bytes(f, s, pub, CKA_MODULUS, &nlen);
    unsigned char *e = get_bytes(f, s, pub, CKA_PUBLIC_EXPONENT, &elen);
    unsigned char *pn = get_bytes(f, s, priv, CKA_MODULUS, &pnlen);
    snprintf(what, sizeof what, "public key read from the token: %lu-bit modulus, exponent",
             (unsigned long)nlen * 8);
    check(n && e, what, 0);
    check(pn && pnlen == nlen && memcmp(pn, n, nlen) == 0,
          "the private key object carries the same CKA_MODULUS", 0);
    EVP_PKEY *pkey = n && e ? openssl_key(n, nlen, e, elen) : NULL;
    check(pkey != NULL, "OpenSSL builds the RSA public key", 0);
    if (pkey == NULL) return 1;

    static const unsigned char msg[] = "signed by fragments, verified by OpenSSL";
    const CK_ULONG msglen = sizeof msg - 1;
    unsigned char sig[1024];
    CK_ULONG siglen = sizeof sig;

    CK_MECHANISM pkcs = {CKM_SHA256_RSA_PKCS, NULL, 0};
    rv = token_sign(f, s, &pkcs, priv, msg, msglen, sig, &siglen);
    check(rv == CKR_OK && siglen == nlen, "C_Sign SHA256-RSA-PKCS: length query, CKR_BUFFER_TOO_SMALL, signature", rv);
    check(rv == CKR_OK && openssl_verifies(pkey, 0, msg, msglen, sig, siglen),
          "OpenSSL verifies the PKCS#1 v1.5 signature", 0);
    sig[siglen / 2] ^= 0x01;
    check(!openssl_verifies(pkey, 0, msg, msglen, sig, siglen),
          "OpenSSL rejects it with one bit flipped", 0);

    CK_RSA_PKCS_PSS_PARAMS pss_params = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM pss = {CKM_SHA256_RSA_PKCS_PSS, &pss_params, sizeof pss_params};
    siglen = sizeof sig;
    rv = token_sign(f, s, &pss, priv, msg, msglen, sig, &siglen);
    check(rv == CKR_OK && siglen == nlen, "C_Sign SHA256-RSA-PKCS-PSS: length query, CKR_BUFFER_TOO_SMALL, signature", rv);
    check(rv == CKR_OK && openssl_verifies(pkey, 1, msg, msglen, sig, siglen),
          "OpenSSL verifies the PSS signature", 0);

    /* OpenSSL encrypts to the token's public key; the token decrypts. */
    static const unsigned char secret[] = "a session key, for the token only";
    unsigned char ct[1024], pt[1024];
    size_t ctlen = sizeof ct;
    EVP_PKEY_CTX *ectx = EVP_PKEY_CTX_new(pkey, NULL);
    int enc_ok = ectx && EVP_PKEY_encrypt_init(ectx) == 1 &&
                 EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING) == 1 &&
                 EVP_PKEY_CTX_set_rsa_oaep_md(ectx, EVP_sha256()) == 1 &&
                 EVP_PKEY_CTX_set_rsa_mgf1_md(ectx, EVP_sha256()) == 1 &&
                 EVP_PKEY_encrypt(ectx, ct, &ctlen, secret, sizeof secret - 1) == 1;
    EVP_PKEY_CTX_free(ectx);
    check(enc_ok, "OpenSSL encrypts with OAEP-SHA256 to the token's public key", 0);
    CK_RSA_PKCS_OAEP_PARAMS oaep_params = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED,
                                           NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &oaep_params, sizeof oaep_params};
    CK_ULONG ptlen = sizeof pt;
    rv = f->C_DecryptInit(s, &oaep, priv);
    if (rv == CKR_OK) rv = f->C_Decrypt(s, ct, (CK_ULONG)ctlen, pt, &ptlen);
    check(rv == CKR_OK && ptlen == sizeof secret - 1 && memcmp(pt, secret, ptlen) == 0,
          "C_Decrypt RSA-PKCS-OAEP recovers OpenSSL's plaintext", rv);

    EVP_PKEY_free(pkey);
    free(n);
    free(e);
    free(pn);
    rv = f->C_Logout(s);
    if (rv == CKR_OK) rv = f->C_CloseSession(s);
    if (rv == CKR_OK) rv = f->C_Finalize(NULL);
    check(rv == CKR_OK, "C_Logout, C_CloseSession, C_Finalize", rv);
    printf("%d passed, %d failed\n", passed, failures);
    return failures == 0 ? 0 : 1;
}
