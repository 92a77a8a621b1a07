//! Wire compatibility of the partial response: a cell that predates `handled_us` still parses
//! (the field defaults to 0), and a current one round-trips both times.

use keyfrag_proto::keys::RsaPartialResponse;

#[test]
fn a_response_without_handled_us_parses_as_zero() {
    let old = r#"{"output":"AQI","epoch":3,"current_epoch":3,"compute_us":1800}"#;
    let r: RsaPartialResponse = serde_json::from_str(old).unwrap();
    assert_eq!(r.output, vec![1, 2]);
    assert_eq!(r.compute_us, 1800);
    assert_eq!(r.handled_us, 0);
}

#[test]
fn handled_us_round_trips() {
    let r = RsaPartialResponse {
        output: vec![7],
        epoch: 1,
        current_epoch: 1,
        previous_epoch: None,
        compute_us: 1800,
        handled_us: 2500,
    };
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["handled_us"], 2500);
    assert_eq!(json["compute_us"], 1800);
    let back: RsaPartialResponse = serde_json::from_value(json).unwrap();
    assert_eq!((back.compute_us, back.handled_us), (1800, 2500));
}
