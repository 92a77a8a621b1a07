/*
 * A plain C application of keyfrag: dlopen the module, find a key by label, sign, verify the
 * signature with the public key read from the token (C_Verify), then fork and do it all
 * again in the child after re-initialising, as PKCS#11 requires of a forked child.
 *
 * usage: sign_fork MODULE PIN LABEL      (config via $KEYFRAG_CONF)
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include "../../include/keyfrag.h"

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

static CK_OBJECT_HANDLE find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
                             CK_OBJECT_CLASS cls, const char *label) {
    CK_ATTRIBUTE tpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    if (f->C_FindObjectsInit(s, tpl, 2) != CKR_OK) return CK_INVALID_HANDLE;
    f->C_FindObjects(s, &h, 1, &n);
    f->C_FindObjectsFinal(s);
    return n == 1 ? h : CK_INVALID_HANDLE;
}

/* Login, find the pair, sign and verify; returns 1 when everything held. */
static int sign_and_verify(CK_FUNCTION_LIST_PTR f, const char *pin, const char *label,
                           const char *who) {
    char what[128];
    CK_SLOT_ID slots[8];
    CK_ULONG nslots = 8;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &nslots);
    if (rv != CKR_OK || nslots == 0) { check(0, "slot list", rv); return 0; }
    CK_SESSION_HANDLE s;
    rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) { check(0, "open session", rv); return 0; }
    rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) { check(0, "login", rv); return 0; }
    CK_OBJECT_HANDLE priv = find(f, s, CKO_PRIVATE_KEY, label);
    CK_OBJECT_HANDLE pub = find(f, s, CKO_PUBLIC_KEY, label);
    snprintf(what, sizeof what, "%s: private and public key found by label", who);
    check(priv != CK_INVALID_HANDLE && pub != CK_INVALID_HANDLE, what, 0);
    if (priv == CK_INVALID_HANDLE || pub == CK_INVALID_HANDLE) return 0;

    CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_BYTE msg[] = "signed by fragments, from C";
    CK_BYTE sig[1024];
    CK_ULONG siglen = 0;
    rv = f->C_SignInit(s, &mech, priv);
    if (rv == CKR_OK) rv = f->C_Sign(s, msg, sizeof msg - 1, NULL, &siglen); /* length query */
    if (rv == CKR_OK && siglen <= sizeof sig) rv = f->C_Sign(s, msg, sizeof msg - 1, sig, &siglen);
    snprintf(what, sizeof what, "%s: C_Sign (two-call) gives a %lu-byte signature", who,
             (unsigned long)siglen);
    check(rv == CKR_OK && siglen == 256, what, rv);
    rv = f->C_VerifyInit(s, &mech, pub);
    if (rv == CKR_OK) rv = f->C_Verify(s, msg, sizeof msg - 1, sig, siglen);
    snprintf(what, sizeof what, "%s: C_Verify with the token's public key", who);
    check(rv == CKR_OK, what, rv);
    sig[10] ^= 1;
    rv = f->C_VerifyInit(s, &mech, pub);
    if (rv == CKR_OK) rv = f->C_Verify(s, msg, sizeof msg - 1, sig, siglen);
    snprintf(what, sizeof what, "%s: a damaged signature gives CKR_SIGNATURE_INVALID", who);
    check(rv == CKR_SIGNATURE_INVALID, what, rv);
    f->C_CloseSession(s);
    return failures == 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODULE PIN LABEL\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    /* Debian's p11-kit header is PKCS#11 2.40, so this program takes the 2.40 entry point;
     * the 3.0 interface (C_GetInterface) is exercised by the module's own tests. */
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv = get_list ? get_list(&f) : CKR_FUNCTION_NOT_SUPPORTED;
    check(rv == CKR_OK && f != NULL, "C_GetFunctionList", rv);
    if (rv != CKR_OK || f == NULL) return 1;

    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = f->C_Initialize(&args);
    check(rv == CKR_OK, "C_Initialize", rv);
    sign_and_verify(f, argv[2], argv[3], "parent");

    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        CK_ULONG n = 0;
        rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
        check(rv == CKR_CRYPTOKI_NOT_INITIALIZED,
              "child: calls before C_Initialize give CKR_CRYPTOKI_NOT_INITIALIZED", rv);
        rv = f->C_Initialize(&args);
        check(rv == CKR_OK, "child: C_Initialize", rv);
        sign_and_verify(f, argv[2], argv[3], "child");
        rv = f->C_Finalize(NULL);
        check(rv == CKR_OK, "child: C_Finalize", rv);
        fflush(stdout);
        _exit(failures == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly", 0);
    sign_and_verify(f, argv[2], argv[3], "parent after fork");
    rv = f->C_Finalize(NULL);
    check(rv == CKR_OK, "C_Finalize", rv);
    printf("%d passed, %d failed\n", passed, failures);
    return failures == 0 ? 0 : 1;
}
