//! The little DER the module writes: an RSA SubjectPublicKeyInfo for CKA_PUBLIC_KEY_INFO.

/// rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
const RSA_ALGORITHM_ID: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian bytes.
fn uint(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let v = &bytes[skip..];
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.is_empty() || v[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(v);
    tlv(0x02, &content)
}

/// DER SubjectPublicKeyInfo of an RSA key (RFC 5280 §4.1, RFC 8017 A.1.1).
pub fn rsa_spki(modulus: &[u8], public_exponent: &[u8]) -> Vec<u8> {
    let mut rsa_key = uint(modulus);
    rsa_key.extend_from_slice(&uint(public_exponent));
    let rsa_key = tlv(0x30, &rsa_key);
    let mut bits = vec![0u8];
    bits.extend_from_slice(&rsa_key);
    let mut spki = RSA_ALGORITHM_ID.to_vec();
    spki.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &spki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_lengths() {
        assert_eq!(uint(&[0x00, 0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(uint(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn spki_shape() {
        let n = [0xc5u8; 256];
        let der = rsa_spki(&n, &[1, 0, 1]);
        // 30 82 01 22 30 0d ... 03 82 01 0f 00 30 82 01 0a 02 82 01 01 00 c5..
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(der.len(), 0x126);
        assert_eq!(&der[4..19], RSA_ALGORITHM_ID);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
    }
}
