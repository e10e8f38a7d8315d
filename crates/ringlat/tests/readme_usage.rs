//! The README's usage snippet is examples/usage.rs verbatim, so it compiles (cargo builds the
//! examples with the tests) and runs in CI as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn readme_usage_snippet_is_the_usage_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../../README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/usage.rs")).unwrap();
    let block = format!("```rust\n{example}```\n");
    assert!(
        readme.contains(&block),
        "README.md's usage snippet differs from crates/ringlat/examples/usage.rs"
    );
}
