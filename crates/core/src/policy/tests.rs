//! Unit tests of the policy engine: the schema, the base permit, denials naming their policy, parse and validation errors, and action scoping.

use super::*;
use settle_domain::rbac::Action;

const REFUND_LIMIT: &str = r#"forbid(principal, action == Action::"refunds:write", resource) when { principal.role == "support" && resource.amount > 5000 };"#;
const SOURCE_LIST: &str = r#"forbid(principal == ApiKey::"key_01ABC", action == Action::"payments:write", resource) unless { ["acct_1", "acct_2"].contains(resource.source) };"#;

fn engine(policies: &[(&str, &str)]) -> PolicyEngine {
    let owned: Vec<(String, String)> = policies.iter().map(|(i, t)| (i.to_string(), t.to_string())).collect();
    PolicyEngine::new(&owned).unwrap()
}

/// `Ok(())` or the denial text, so asserts stay on one line.
fn run(e: &PolicyEngine, key_id: &str, role: &str, perm: &str, attrs: &ResourceAttrs) -> Result<(), String> {
    let principal = PolicyPrincipal {
        key_id,
        role,
        name: "test key",
    };
    e.check(&principal, Permission::parse(perm).unwrap(), attrs)
        .map_err(|Denied(m)| m)
}

fn refund(amount: i64) -> ResourceAttrs {
    ResourceAttrs {
        amount: Some(amount),
        currency: Some("USD".into()),
        ..Default::default()
    }
}

fn paid_from(source: &str) -> ResourceAttrs {
    ResourceAttrs {
        amount: Some(100),
        source: Some(source.into()),
        ..Default::default()
    }
}

fn invalid(text: &str) -> String {
    match validate(text) {
        Err(PolicyError::Invalid(m)) => m,
        other => panic!("{text}: expected Invalid, got {other:?}"),
    }
}

#[test]
fn schema_parses_and_covers_exactly_the_permissions() {
    let schema = model().unwrap().schema();
    let actions: HashSet<String> = schema.actions().map(|a| a.id().escaped().to_string()).collect();
    let perms: HashSet<String> = Resource::ALL
        .into_iter()
        .flat_map(|r| [Action::Read, Action::Write].map(|a| Permission::new(r, a).to_string()))
        .collect();
    assert_eq!(actions, perms);
}

#[test]
fn base_permit_allows_everything_without_policies() {
    for e in [PolicyEngine::empty(), engine(&[])] {
        for r in Resource::ALL {
            for a in [Action::Read, Action::Write] {
                let p = Permission::new(r, a).to_string();
                assert_eq!(run(&e, "key_1", "viewer", &p, &ResourceAttrs::default()), Ok(()), "{p}");
            }
        }
    }
}

#[test]
fn refund_limit_for_support() {
    let e = engine(&[("pol_refund", REFUND_LIMIT)]);
    assert_eq!(run(&e, "key_1", "support", "refunds:write", &refund(5000)), Ok(()));
    assert!(run(&e, "key_1", "support", "refunds:write", &refund(5001)).is_err());
    assert_eq!(run(&e, "key_1", "admin", "refunds:write", &refund(9999)), Ok(()));
    assert_eq!(run(&e, "key_1", "developer", "refunds:write", &refund(9999)), Ok(()));
    // Other actions on the same kind are untouched.
    assert_eq!(run(&e, "key_1", "support", "refunds:read", &refund(9999)), Ok(()));
}

#[test]
fn denial_names_the_policy() {
    let e = engine(&[("pol_01REFUND", REFUND_LIMIT), ("pol_01OTHER", SOURCE_LIST)]);
    let msg = run(&e, "key_1", "support", "refunds:write", &refund(5001)).unwrap_err();
    assert!(msg.contains("pol_01REFUND"), "{msg}");
    assert!(!msg.contains("pol_01OTHER"), "{msg}");
}

#[test]
fn source_allow_list_for_one_key() {
    let e = engine(&[("pol_src", SOURCE_LIST)]);
    assert_eq!(
        run(&e, "key_01ABC", "developer", "payments:write", &paid_from("acct_2")),
        Ok(())
    );
    let msg = run(&e, "key_01ABC", "developer", "payments:write", &paid_from("acct_9")).unwrap_err();
    assert!(msg.contains("pol_src"), "{msg}");
    // An unknown source is "" and is not on the list either.
    assert!(
        run(
            &e,
            "key_01ABC",
            "developer",
            "payments:write",
            &ResourceAttrs::default()
        )
        .is_err()
    );
    assert_eq!(
        run(&e, "key_OTHER", "developer", "payments:write", &paid_from("acct_9")),
        Ok(())
    );
    assert_eq!(
        run(&e, "key_01ABC", "developer", "payments:read", &paid_from("acct_9")),
        Ok(())
    );
}

#[test]
fn permit_only_policy_does_not_deny() {
    let text = r#"permit(principal, action == Action::"refunds:write", resource) when { resource.amount < 10 };"#;
    validate(text).unwrap();
    let e = engine(&[("pol_permit", text)]);
    assert_eq!(run(&e, "key_1", "support", "refunds:write", &refund(1_000_000)), Ok(()));
}

#[test]
fn examples_validate() {
    validate(REFUND_LIMIT).unwrap();
    validate(SOURCE_LIST).unwrap();
    validate(r#"forbid(principal, action == Action::"accounts:write", resource) when { resource.currency == "" };"#)
        .unwrap();
    validate(r#"forbid(principal, action, resource is Object) when { resource.id == "" };"#).unwrap();
}

#[test]
fn parse_error_points_at_the_place() {
    let text = "forbid(principal, action, resource)\nwhen { resource.amount > };";
    let Err(PolicyError::Parse(msg)) = validate(text) else {
        panic!("expected Parse")
    };
    assert!(msg.contains("line 2, column 26") && msg.contains('}'), "{msg}");
    let one_line = "forbid(principal, action, resource) when { resource.amount > };";
    assert!(matches!(validate(one_line), Err(PolicyError::Parse(_))));
    assert!(matches!(validate("allow everything"), Err(PolicyError::Parse(_))));
    let Err(PolicyError::Parse(msg)) = PolicyEngine::new(&[("pol_bad".into(), text.into())]) else {
        panic!()
    };
    assert!(msg.contains("pol_bad"), "{msg}");
}

#[test]
fn validation_errors() {
    let colour = r#"forbid(principal, action == Action::"payments:write", resource) when { resource.colour == "" };"#;
    assert!(invalid(colour).contains("colour"));
    assert!(invalid(r#"forbid(principal, action, resource == Widget::"x");"#).contains("Widget"));
    invalid(r#"forbid(principal, action == Action::"payments:delete", resource);"#);
    // `amount` exists on Payment and Refund only, so an unconstrained action must narrow first.
    invalid("forbid(principal, action, resource) when { resource.amount > 5 };");
    invalid(r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount > "5" };"#);
    // Type-correct but never applies: a limit that would silently never limit.
    assert!(invalid(r#"forbid(principal, action == Action::"refunds:write", resource is Account);"#).contains("never"));
    let Err(PolicyError::Invalid(msg)) = PolicyEngine::new(&[("pol_typo".into(), colour.into())]) else {
        panic!()
    };
    assert!(msg.contains("pol_typo"), "{msg}");
}

#[test]
fn one_policy_per_text() {
    invalid(&format!("{REFUND_LIMIT}\n{SOURCE_LIST}"));
    invalid("  // nothing\n");
    invalid("forbid(principal == ?principal, action, resource);");
    let dup = [
        ("pol_a".into(), REFUND_LIMIT.into()),
        ("pol_a".into(), SOURCE_LIST.into()),
    ];
    assert!(matches!(PolicyEngine::new(&dup), Err(PolicyError::Invalid(_))));
}

#[test]
fn evaluation_error_denies() {
    let text = r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount + 9223372036854775807 > 0 && resource.amount < 0 };"#;
    validate(text).unwrap();
    let e = engine(&[("pol_overflow", text)]);
    // amount 0 does not overflow: the forbid is false and the base permit allows.
    assert_eq!(run(&e, "key_1", "support", "refunds:write", &refund(0)), Ok(()));
    // amount 1 overflows: Cedar alone would skip the policy and allow; we deny and say why.
    let msg = run(&e, "key_1", "support", "refunds:write", &refund(1)).unwrap_err();
    assert!(msg.contains("pol_overflow") && msg.contains("overflow"), "{msg}");
}

#[test]
fn unscoped_actions_skip_evaluation_but_scoped_ones_do_not() {
    let engine = PolicyEngine::new(&[(
        "pol_limit".into(),
        r#"forbid(principal, action == Action::"refunds:write", resource) when { resource.amount > 1 };"#.into(),
    )])
    .expect("compiles");
    assert_eq!(
        engine.inner.scoped.as_ref().map(|s| s.contains("refunds:write")),
        Some(true)
    );
    let any =
        PolicyEngine::new(&[("pol_all".into(), "forbid(principal, action, resource);".into())]).expect("compiles");
    assert!(any.inner.scoped.is_none(), "an unconstrained action applies everywhere");
    let who = PolicyPrincipal {
        key_id: "key_1",
        role: "x",
        name: "n",
    };
    let read = Permission::parse("accounts:read").expect("permission");
    assert!(any.check(&who, read, &ResourceAttrs::default()).is_err());
    assert!(engine.check(&who, read, &ResourceAttrs::default()).is_ok());
}

#[test]
fn engine_is_cheap_to_share() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<PolicyEngine>();
    let e = engine(&[("pol_refund", REFUND_LIMIT)]);
    assert!(Arc::ptr_eq(&e.inner, &e.clone().inner));
}

mod limits_tests {
    //! The structural limits: the attack shapes are refused before Cedar
    //! sees them, real policies fit, and the worst shapes the limits allow
    //! compile and evaluate on a thread of `WORST_CASE_STACK`.

    use super::super::limits::{self, LimitError, MAX_DEPTH, MAX_OPERATORS, WORST_CASE_STACK};
    use super::*;

    const HEAD: &str = "forbid(principal, action, resource) when { ";
    const REFUNDS: &str = r#"forbid(principal, action == Action::"refunds:write", resource) when { "#;

    fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    /// `(((principal.role == "zz")))`, `n` brackets deep.
    fn parens(n: usize) -> String {
        format!("{HEAD}{} }};", nested("(", r#"principal.role == "zz""#, ")", n))
    }

    fn sets(n: usize) -> String {
        format!(
            "{HEAD}{} == {} }};",
            nested("[", "principal.role", "]", n),
            nested("[", r#""zz""#, "]", n)
        )
    }

    fn records(n: usize) -> String {
        format!(
            "{HEAD}{} == {} }};",
            nested("{a: ", "principal.role", "}", n),
            nested("{a: ", r#""zz""#, "}", n)
        )
    }

    /// `resource.amount + 1 + 1 ... < 0` with `n` additions.
    fn plus(n: usize) -> String {
        format!("{REFUNDS}resource.amount{} < 0 }};", " + 1".repeat(n))
    }

    /// `if .. then false else if .. then false else ... principal.role == "zz"`, `n` ifs.
    fn ifs(n: usize) -> String {
        let chain = r#"if principal.role == "a" then false else "#.repeat(n);
        format!(r#"{HEAD}{chain}principal.role == "zz" }};"#)
    }

    /// `n + 1` terms joined by `&&`, all true, so the policy forbids.
    fn ands(n: usize) -> String {
        let rest = r#" && principal.role != "a""#.repeat(n);
        format!(r#"{HEAD}principal.role != "a"{rest} }};"#)
    }

    /// The deepest evaluation: sets nested as deep as allowed around the
    /// longest `+` chain allowed.
    fn sets_around_plus(depth: usize, n: usize) -> String {
        let chain = format!("resource.amount{}", " + 1".repeat(n));
        format!(
            "{REFUNDS}{} == {} }};",
            nested("[", &chain, "]", depth),
            nested("[", "0", "]", depth)
        )
    }

    fn limit_of(text: &str) -> Option<LimitError> {
        match validate(text) {
            Err(PolicyError::Limit(l)) => Some(l),
            _ => None,
        }
    }

    #[test]
    fn attack_shapes_are_refused_before_parsing() {
        let deep = r#"forbid(principal, action, resource) when { "#.to_owned()
            + &"(".repeat(200)
            + r#"principal.role == "zz""#
            + &")".repeat(200)
            + " };";
        assert_eq!(limits::check(&deep), Err(LimitError::TooDeep { found: 201 }));
        assert!(matches!(limit_of(&sets(200)), Some(LimitError::TooDeep { found: 201 })));
        assert!(matches!(limit_of(&plus(50_000)), Some(LimitError::TooLong { .. })));
        assert!(matches!(
            limits::check(&plus(2_000)),
            Err(LimitError::TooManyOperators { found: 2_003 })
        ));
        assert!(matches!(limit_of(&ifs(1_250)), Some(LimitError::TooLong { .. })));
        assert!(matches!(limit_of(&ifs(200)), Some(LimitError::TooDeep { .. })));
        assert!(limit_of(&ands(999)).is_some(), "1,000 `&&` terms");
        assert!(matches!(
            limit_of(&ands(100)),
            Some(LimitError::TooManyOperators { found: 302 })
        ));
        let msg = validate(&deep).unwrap_err().to_string();
        assert!(
            msg.contains("201 levels") && msg.contains(&format!("limit is {MAX_DEPTH}")),
            "{msg}"
        );
    }

    #[test]
    fn strings_and_comments_are_not_syntax() {
        let text = format!(
            "// {}\n{HEAD}principal.name == \"{}\\\" ((\" }};",
            "((((".repeat(100),
            "[[ && ".repeat(100)
        );
        assert_eq!(limits::measure(text.as_bytes()).depth, 1);
        assert_eq!(limits::measure(text.as_bytes()).operators, 2);
        validate(&text).unwrap();
    }

    #[test]
    fn sequential_ifs_do_not_add_up() {
        let text = format!(
            "{HEAD}[{}].contains(principal.role) }};",
            [r#"if principal.role == "a" then "b" else "c""#; 4].join(", ")
        );
        assert_eq!(limits::measure(text.as_bytes()).depth, 3);
    }

    #[test]
    fn real_policies_fit() {
        let ids: Vec<String> = (0..100)
            .map(|i| format!("\"acct_01JABCDEFGHJKMNPQRSTVW{i:04}\""))
            .collect();
        let list = format!(
            r#"forbid(principal == ApiKey::"key_01ABC", action == Action::"payments:write", resource) unless {{ [{}].contains(resource.source) }};"#,
            ids.join(", ")
        );
        validate(&list).unwrap();
        validate(REFUND_LIMIT).unwrap();
        validate(SOURCE_LIST).unwrap();
    }

    /// Each shape at exactly the limits compiles, validates, evaluates (no
    /// evaluation error) and drops on a thread of `WORST_CASE_STACK`; one
    /// level or operator more is refused.
    #[test]
    fn worst_allowed_shapes_fit_the_measured_stack() {
        let depth = MAX_DEPTH - 1; // the `when { }` braces are one level
        let ops = MAX_OPERATORS;
        // (text, permission, whether the forbid applies)
        let shapes: Vec<(String, &str, bool)> = vec![
            (parens(depth), "accounts:read", false),
            (sets(depth), "accounts:read", false),
            (records(depth), "accounts:read", false),
            (plus(ops - 3), "refunds:write", false),
            (ifs(depth.min((ops - 2) / 3)), "accounts:read", false),
            (ands((ops - 2) / 3), "accounts:read", true),
            (sets_around_plus(depth, ops - 3), "refunds:write", false),
        ];
        for (text, _, _) in &shapes {
            assert_eq!(limits::check(text), Ok(()), "{text}");
        }
        assert!(limit_of(&parens(depth + 1)).is_some());
        assert!(limit_of(&plus(ops - 2)).is_some());
        assert!(limit_of(&sets_around_plus(depth, ops - 2)).is_some());
        let worst = std::thread::Builder::new()
            .stack_size(WORST_CASE_STACK)
            .spawn(move || {
                for (text, perm, forbids) in shapes {
                    validate(&text).map_err(|e| format!("{e}: {text}"))?;
                    let e = PolicyEngine::new(&[("pol_worst".into(), text.clone())]).map_err(|e| e.to_string())?;
                    let outcome = run(&e, "key_1", "support", perm, &refund(0));
                    match (outcome, forbids) {
                        (Ok(()), false) => {}
                        (Err(m), true) if m.contains("denied by policy pol_worst") => {}
                        (other, _) => return Err(format!("{other:?}: {text}")),
                    }
                }
                Ok::<(), String>(())
            })
            .unwrap();
        worst.join().unwrap().unwrap();
    }

    /// The async entry points run on their own thread and give the same answers.
    #[tokio::test]
    async fn isolated_compile_gives_the_same_answers() {
        validate_isolated(REFUND_LIMIT.into()).await.unwrap();
        assert!(matches!(
            validate_isolated(parens(200)).await,
            Err(PolicyError::Limit(LimitError::TooDeep { .. }))
        ));
        let err = PolicyEngine::build(vec![("pol_deep".into(), parens(200))])
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("pol_deep") && err.to_string().contains("levels"),
            "{err}"
        );
        PolicyEngine::build(vec![("pol_ok".into(), REFUND_LIMIT.into())])
            .await
            .unwrap();
    }
}
