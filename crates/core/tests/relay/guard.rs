//! Relay tests, part 2: what signed, valid messages could still be used for — replays,
//! late rounds, equivocating broadcasts — and the guard and transcript that stop it.

use super::*;

#[test]
fn replays_and_backward_rounds_are_refused() {
    let (keys, roster) = parties();
    let mut guard = ReplayGuard::new();
    let env = sealed_1_to_2(&keys, &roster);
    open(&keys[1], IDS[1], &roster, &env, &ctx()).unwrap();
    guard.admit(env.header()).unwrap();
    // The very same envelope again (it still opens: the guard is what stops it).
    assert!(open(&keys[1], IDS[1], &roster, &env, &ctx()).is_ok());
    assert_eq!(
        guard.admit(env.header()),
        Err(RelayError::Replay {
            round: 3,
            sender: "cell-1".into()
        })
    );
    // Same round: another sender, and a broadcast from the same sender, are both fine.
    let from_3 = seal(&keys[2], IDS[2], roster.get(IDS[1]).unwrap(), &ctx(), b"y").unwrap();
    guard.admit(from_3.header()).unwrap();
    guard
        .admit(broadcast(&keys[0], IDS[0], &ctx(), b"b").unwrap().header())
        .unwrap();
    // Advance to round 4; round 3 is now closed for everyone.
    let next = ctx().next_round();
    let r4 = seal(&keys[0], IDS[0], roster.get(IDS[1]).unwrap(), &next, b"z").unwrap();
    guard.admit(r4.header()).unwrap();
    let late = broadcast(&keys[1], IDS[1], &ctx(), b"late").unwrap();
    assert_eq!(
        guard.admit(late.header()),
        Err(RelayError::RoundWentBack { latest: 4, got: 3 })
    );
    // Other sessions are independent, and a forgotten run starts afresh.
    let other = Context {
        session_id: "sess-99".into(),
        ..ctx()
    };
    let o = seal(&keys[0], IDS[0], roster.get(IDS[1]).unwrap(), &other, b"o").unwrap();
    guard.admit(o.header()).unwrap();
    guard.forget(&other);
    guard.admit(o.header()).unwrap();
}

#[test]
fn transcript_mismatch_names_the_party() {
    let (keys, roster) = parties();
    let c = ctx();
    let round: Vec<Envelope> = keys
        .iter()
        .zip(IDS)
        .map(|(k, id)| broadcast(k, id, &c, format!("N point of {id}").as_bytes()).unwrap())
        .collect();
    for env in &round {
        verify_broadcast(&roster, env, &c).unwrap();
    }
    // Parties 1 and 2 see the round in different delivery orders: same hash.
    let mut t1 = Transcript::new(&c);
    t1.absorb_round(&round).unwrap();
    let mut t2 = Transcript::new(&c);
    t2.absorb_round(&[round[2].clone(), round[0].clone(), round[1].clone()])
        .unwrap();
    assert_eq!(t1.hash(), t2.hash());
    // The relay shows party 3 another (validly signed) broadcast of cell-1.
    let equivocation = broadcast(&keys[0], IDS[0], &c, b"another N point").unwrap();
    let mut t3 = Transcript::new(&c);
    t3.absorb_round(&[equivocation, round[1].clone(), round[2].clone()])
        .unwrap();
    assert_ne!(t3.hash(), t1.hash());

    let echoes = [
        ("cell-1", t1.hash()),
        ("cell-2", t2.hash()),
        ("cell-3", t3.hash()),
    ];
    assert_eq!(
        t1.check_echo(&echoes),
        Err(RelayError::TranscriptMismatch {
            party: "cell-3".into()
        })
    );
    assert!(t1.check_echo(&echoes[..2]).is_ok());
    // Two broadcasts from one sender in a round, or a sealed message, are not transcript items.
    assert!(
        t1.clone()
            .absorb_round(&[round[0].clone(), round[0].clone()])
            .is_err()
    );
    assert_eq!(
        t1.clone().absorb(&sealed_1_to_2(&keys, &roster)),
        Err(RelayError::WrongKind)
    );
    // Another session's broadcast, or an older round, is refused.
    let other = broadcast(
        &keys[0],
        IDS[0],
        &Context {
            session_id: "s2".into(),
            ..c.clone()
        },
        b"",
    )
    .unwrap();
    assert_eq!(t1.clone().absorb(&other), Err(RelayError::WrongSession));
    let older = broadcast(&keys[0], IDS[0], &Context { round: 2, ..c }, b"").unwrap();
    assert!(matches!(
        t1.absorb(&older),
        Err(RelayError::RoundWentBack { .. })
    ));
}
