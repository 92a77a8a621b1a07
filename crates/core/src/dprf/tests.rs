//! RFC 9497 appendix A.1.2 (ristretto255-SHA512, VOPRF mode, batch size one) and the `voprf`
//! crate as the oracle for the distributed sum.

use curve25519_dalek::scalar::Scalar;

use super::group::scalar_from_bytes;
use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Vector {
    input: &'static str,
    blinded: &'static str,
    evaluated: &'static str,
    proof: &'static str,
    output: &'static str,
}

const SK: &str = "e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909";
const PK: &str = "c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e";
const BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";
const PROOF_NONCE: &str = "222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e";

const VECTORS: [Vector; 2] = [
    Vector {
        input: "00",
        blinded: "863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945",
        evaluated: "aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e",
        proof: "ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd06\
                6d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d",
        output: "b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7d\
                 a4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c",
    },
    Vector {
        input: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        blinded: "cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c",
        evaluated: "60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468",
        proof: "401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a\
                67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02",
        output: "8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60\
                 356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6",
    },
];

#[test]
fn rfc9497_voprf_vectors() {
    let sk = PrfShare::from_bytes(&unhex(SK)).unwrap();
    assert_eq!(sk.commitment().unwrap().to_bytes().to_vec(), unhex(PK));
    let blind = scalar_from_bytes(&unhex(BLIND)).unwrap();
    let nonce = scalar_from_bytes(&unhex(PROOF_NONCE)).unwrap();
    for v in &VECTORS {
        let input = unhex(v.input);
        let b = client::Blinding::with_blind(&input, blind).unwrap();
        assert_eq!(b.blinded().to_bytes().to_vec(), unhex(v.blinded));
        let (z, proof) = cell::evaluate_with_nonce(&sk, b.blinded(), &nonce).unwrap();
        assert_eq!(z.to_bytes().to_vec(), unhex(v.evaluated));
        assert_eq!(proof.to_bytes().to_vec(), unhex(v.proof));
        let pk = Element::from_bytes(&unhex(PK)).unwrap();
        verify(
            &pk,
            b.blinded(),
            &z,
            &Proof::from_bytes(&unhex(v.proof)).unwrap(),
        )
        .unwrap();
        assert_eq!(b.finalize([&z], None).unwrap().to_vec(), unhex(v.output));
        assert_eq!(
            evaluate_whole(&sk, &input).unwrap().to_vec(),
            unhex(v.output)
        );
    }
}

fn voprf_output(k: &PrfShare, input: &[u8]) -> Vec<u8> {
    use voprf::{Ristretto255, VoprfServer};
    let server = VoprfServer::<Ristretto255>::new_with_key(&k.to_bytes()[..]).unwrap();
    server.evaluate(input).unwrap().to_vec()
}

/// Three cells and a customer share, each proof verified, against `voprf` with k = Σ kᵢ.
#[test]
fn the_distributed_sum_is_the_voprf_evaluation_with_the_summed_key() {
    let cells: Vec<PrfShare> = (0..3).map(|_| PrfShare::random().unwrap()).collect();
    let customer = PrfShare::random().unwrap();
    for input in [&b""[..], b"keyfrag/aes/v1", &[0xa5; 1000]] {
        let b = Blinding::new(input).unwrap();
        let mut evaluated = Vec::new();
        for k in &cells {
            let (z, proof) = evaluate(k, b.blinded()).unwrap();
            let wire = Proof::from_bytes(&proof.to_bytes()).unwrap();
            verify(&k.commitment().unwrap(), b.blinded(), &z, &wire).unwrap();
            evaluated.push(z);
        }
        let out = b.finalize(&evaluated, None).unwrap();
        assert_eq!(out.to_vec(), voprf_output(&PrfShare::sum(&cells), input));

        let with_customer = b.finalize(&evaluated, Some(&customer)).unwrap();
        let all: Vec<&PrfShare> = cells.iter().chain([&customer]).collect();
        assert_eq!(
            with_customer.to_vec(),
            voprf_output(&PrfShare::sum(all), input)
        );
        assert_ne!(out.to_vec(), with_customer.to_vec());
    }
}

#[test]
fn a_wrong_partial_fails_its_proof() {
    let k1 = PrfShare::random().unwrap();
    let k2 = PrfShare::random().unwrap();
    let b = Blinding::new(b"x").unwrap();
    let (z, proof) = evaluate(&k1, b.blinded()).unwrap();
    let pk1 = k1.commitment().unwrap();
    // Another share's evaluation under k1's proof and commitment.
    let (z2, proof2) = evaluate(&k2, b.blinded()).unwrap();
    assert!(verify(&pk1, b.blinded(), &z2, &proof).is_err());
    assert!(verify(&pk1, b.blinded(), &z2, &proof2).is_err());
    // The right evaluation against the wrong commitment or another blinded element.
    assert!(verify(&k2.commitment().unwrap(), b.blinded(), &z, &proof).is_err());
    let other = Blinding::new(b"y").unwrap();
    assert!(verify(&pk1, other.blinded(), &z, &proof).is_err());
    // A flipped bit in either scalar of the proof.
    for i in [0, 40] {
        let mut bytes = proof.to_bytes();
        bytes[i] ^= 1;
        if let Ok(p) = Proof::from_bytes(&bytes) {
            assert!(verify(&pk1, b.blinded(), &z, &p).is_err());
        }
    }
    verify(&pk1, b.blinded(), &z, &proof).unwrap();
}

#[test]
fn the_blind_changes_b_and_not_the_output() {
    let k = PrfShare::random().unwrap();
    let (a, b) = (Blinding::new(b"in").unwrap(), Blinding::new(b"in").unwrap());
    assert_ne!(a.blinded(), b.blinded());
    let fa = a
        .finalize([&evaluate(&k, a.blinded()).unwrap().0], None)
        .unwrap();
    let fb = b
        .finalize([&evaluate(&k, b.blinded()).unwrap().0], None)
        .unwrap();
    assert_eq!(*fa, *fb);
    assert_eq!(*fa, *evaluate_whole(&k, b"in").unwrap());
}

#[test]
fn secrets_are_redacted_and_inputs_bounded() {
    let k = PrfShare::from_bytes(&Scalar::ONE.to_bytes()).unwrap();
    assert_eq!(format!("{k:?}"), "PrfShare([redacted])");
    let b = Blinding::new(b"secret input").unwrap();
    assert_eq!(format!("{b:?}"), "Blinding([redacted])");
    assert!(Blinding::new(&vec![0u8; MAX_INPUT_LEN + 1]).is_err());
    assert!(Blinding::new(&vec![0u8; MAX_INPUT_LEN]).is_ok());
}

#[test]
fn commitments_hash_names_uid_and_order() {
    let a = PrfShare::random().unwrap().commitment().unwrap();
    let b = PrfShare::random().unwrap().commitment().unwrap();
    let h = commitments_hash("u1", &[a, b]);
    assert_ne!(h, commitments_hash("u1", &[b, a]));
    assert_ne!(h, commitments_hash("u2", &[a, b]));
    assert_eq!(h, commitments_hash("u1", &[a, b]));
}
