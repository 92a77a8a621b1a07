/*
 * keyfrag.h — loading and configuring the keyfrag PKCS#11 module from C.
 *
 * keyfrag is a PKCS#11 3.0 module (libkeyfrag_pkcs11.so) whose RSA private keys exist only as
 * additive shares on independent "cells". To an application it is an ordinary token: standard
 * mechanisms, standard results. Include the OASIS pkcs11.h (or p11-kit's) before this file.
 *
 * Loading
 * -------
 *   void *lib = dlopen("libkeyfrag_pkcs11.so", RTLD_NOW | RTLD_LOCAL);
 *
 *   // PKCS#11 3.0 (preferred): the "PKCS 11" interface, version 3.0 (2.40 is offered too).
 *   CK_C_GetInterface get_interface = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
 *   CK_VERSION v30 = {3, 0};
 *   CK_INTERFACE_PTR iface;
 *   get_interface((CK_UTF8CHAR_PTR)"PKCS 11", &v30, &iface, 0);
 *   CK_FUNCTION_LIST_3_0_PTR f = (CK_FUNCTION_LIST_3_0_PTR)iface->pFunctionList;
 *
 *   // PKCS#11 2.40: C_GetFunctionList.
 *   CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
 *
 * Only C_GetFunctionList, C_GetInterfaceList and C_GetInterface are exported symbols; every
 * other function is reached through the function list.
 *
 * Configuration
 * -------------
 * The module reads keyfrag.toml (one [[token]] per slot, each with its cells). It is found:
 *   1. from C_Initialize: CK_C_INITIALIZE_ARGS.pReserved may point to a NUL-terminated string
 *      of space-separated key=value words, as NSS passes module "parameters="; the word
 *      "config=/path/to/keyfrag.toml" names the file;
 *   2. else $KEYFRAG_CONF;
 *   3. else ~/.config/keyfrag/keyfrag.toml;
 *   4. else /etc/keyfrag/keyfrag.toml.
 * A missing or invalid file makes C_Initialize fail (CKR_GENERAL_ERROR) with a log line
 * naming the file and line. C_Initialize does no network I/O.
 *
 *   CK_C_INITIALIZE_ARGS args = {0};
 *   args.flags = CKF_OS_LOCKING_OK;
 *   args.pReserved = "config=/etc/keyfrag/keyfrag.toml";
 *   f->C_Initialize(&args);
 *
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS is honoured: session-key leases are then renewed on use
 * instead of by a background thread.
 *
 * Logging: to stderr, filtered by $KEYFRAG_LOG (tracing syntax, e.g. "debug" or
 * "keyfrag_pkcs11=debug"); default "warn". Logs never contain PINs, keys or data.
 *
 * Fork: after fork() the child must call C_Initialize again; until then every call returns
 * CKR_CRYPTOKI_NOT_INITIALIZED.
 */
#ifndef KEYFRAG_H
#define KEYFRAG_H

/* Vendor-defined values: CKA_VENDOR_DEFINED | 0x4B460000 ("KF") + n. */
#define CKA_KEYFRAG_BASE   (0x80000000UL | 0x4B460000UL)
/*
 * CKA_KEYFRAG_EPOCH - CK_ULONG, read-only, private keys: the epoch of the key's fragments.
 * 1 when the key is generated or imported, one more after each proactive refresh
 * (`keyfrag refresh`), which replaces every cell's fragment while the key stays the same.
 * Read from the cells on each C_GetAttributeValue (CKR_DEVICE_ERROR when they cannot be
 * reached); in a template it is CKR_ATTRIBUTE_READ_ONLY; C_FindObjects does not match it.
 *
 *   CK_ULONG epoch;
 *   CK_ATTRIBUTE a = { CKA_KEYFRAG_EPOCH, &epoch, sizeof epoch };
 *   f->C_GetAttributeValue(session, private_key, &a, 1);
 */
#define CKA_KEYFRAG_EPOCH  (CKA_KEYFRAG_BASE + 1UL)

/* Private and secret keys, read-only: SHA-256 of the customer fragment's identity key (32 bytes)
 * when the key needs the customer's share (the token's customer_fragment file, unsealed by the
 * user PIN at C_Login; for a secret key its PRF share joins every evaluation); empty for a key
 * the cells hold alone. Such a key is usable only while that file is unsealed: without it
 * C_Sign/C_Decrypt (and C_EncryptInit etc. for a secret key) return CKR_DEVICE_ERROR and the
 * log says why. A token with a customer fragment does not offer CKM_RSA_PKCS_KEY_PAIR_GEN yet;
 * C_GenerateKey of secret keys works there. */
#define CKA_KEYFRAG_CUSTOMER (CKA_KEYFRAG_BASE + 2UL)

#define CKM_KEYFRAG_BASE   (0x80000000UL | 0x4B460000UL)
#define CKR_KEYFRAG_BASE   (0x80000000UL | 0x4B460000UL)

/*
 * CKM_KEYFRAG_AES_GCM_MSG - encrypt/decrypt, no parameters, with a CKK_AES secret key made by
 * C_GenerateKey(CKM_AES_KEY_GEN). Each C_Encrypt draws a random 32-byte salt and derives a
 * one-message AES-256 key from the cells' PRF (F_k("keyfrag/msg/v1" || key uid || salt), then
 * HKDF-SHA256 with the header as info), so a leaked message key exposes that message only.
 * The output is self-describing; C_Decrypt with the same mechanism and key takes it whole:
 *
 *   offset  size  field
 *        0     2  "KF"
 *        2     1  version (1)
 *        3     1  suite (1: ristretto255-SHA512 2HashDH / HKDF-SHA256 / AES-256-GCM)
 *        4    16  key uid (the key's CKA_UNIQUE_ID names the object; this names its material)
 *       20    32  salt
 *       52    12  GCM IV
 *       64     n  ciphertext (n = plaintext length)
 *     64+n    16  GCM tag; the AAD is the 64-byte header, so every field is authenticated
 *
 * Output length = plaintext length + 80. Any change to any byte, or decryption under another
 * key, is CKR_ENCRYPTED_DATA_INVALID; an input shorter than 80 bytes is
 * CKR_ENCRYPTED_DATA_LEN_RANGE. C_EncryptUpdate/C_DecryptUpdate buffer their input and output
 * nothing; C_*Final produces the whole result. Every encryption and decryption is one round
 * trip to the cells; message keys are never cached.
 *
 *   CK_MECHANISM m = { CKM_KEYFRAG_AES_GCM_MSG, NULL, 0 };
 *   f->C_EncryptInit(session, &m, aes_key);
 *   f->C_Encrypt(session, data, data_len, out, &out_len);
 */
#define CKM_KEYFRAG_AES_GCM_MSG (CKM_KEYFRAG_BASE + 1UL)

#endif /* KEYFRAG_H */
