//! keyfrag PKCS#11 module
