//! Property tests: every parser takes any input without panicking, and accepted values
//! round-trip.

use proptest::prelude::*;
use workflow_registry_sync::digest::{Digest, Reference, validate_name, validate_tag};
use workflow_registry_sync::http::{parse_content_range, parse_range, parse_route};
use workflow_registry_sync::manifest::{ImageConfig, Manifest};
use workflow_registry_sync::reference::ImageRef;

proptest! {
    #[test]
    fn string_parsers_never_panic(s in ".{0,300}") {
        let _ = Digest::parse(&s);
        let _ = Reference::parse(&s);
        let _ = validate_name(&s);
        let _ = validate_tag(&s);
        let _ = parse_route(&s);
        let _ = parse_range(&s);
        let _ = parse_content_range(&s);
        let _ = ImageRef::parse(&s);
        let _ = workflow_registry_sync::auth::parse_basic(&s);
        let _ = workflow_registry_sync::import::parse_challenge(&s);
    }

    #[test]
    fn byte_parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..2000), ct in "[a-z./+-]{0,60}") {
        let _ = Manifest::parse(&ct, &b);
        let _ = ImageConfig::parse(&b);
    }

    #[test]
    fn valid_names_parse_inside_routes(name in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}(-[a-z0-9]{1,4})?){0,3}", tag in "[A-Za-z0-9_][A-Za-z0-9._-]{0,20}") {
        prop_assert!(validate_name(&name).is_ok());
        prop_assert!(validate_tag(&tag).is_ok());
        let route = parse_route(&format!("/v2/{name}/manifests/{tag}"));
        prop_assert_eq!(route, Some(workflow_registry_sync::http::Route::Manifest(name.clone(), tag.clone())));
        let r = ImageRef::parse(&format!("registry.example.com/{name}:{tag}")).unwrap();
        prop_assert_eq!(r.repository, name);
        prop_assert_eq!(r.tag, Some(tag));
    }

    #[test]
    fn digests_round_trip(data in proptest::collection::vec(any::<u8>(), 0..500)) {
        let d = Digest::of(&data);
        prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn manifest_json_values_never_panic(v in arb_json()) {
        let body = serde_json::to_vec(&v).unwrap();
        let _ = Manifest::parse("", &body);
        let _ = Manifest::parse("application/vnd.oci.image.index.v1+json", &body);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("schemaVersion".to_string()),
            Just("mediaType".to_string()),
            Just(
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    .to_string()
            ),
            "[a-z:]{0,10}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("schemaVersion".to_string()),
                    Just("mediaType".to_string()),
                    Just("config".to_string()),
                    Just("layers".to_string()),
                    Just("manifests".to_string()),
                    Just("subject".to_string()),
                    Just("digest".to_string()),
                    Just("size".to_string()),
                    Just("platform".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
