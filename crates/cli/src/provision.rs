//! Provisioning of cell directories, certificates, access keys and configs.
