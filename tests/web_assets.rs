//! The server embeds and publishes a copy of the web demo and the JS client
//! library (`server/web/{demo,src}`, see `server/src/net/web.rs`); the originals
//! are developed and tested in `clients/web/`. The copy must be exact.

use std::collections::BTreeMap;
use std::path::Path;

/// The regular files of `dir` (symlinks such as `demo/lib` are not assets).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.file_type().expect("file type").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read asset"))
        })
        .collect()
}

#[test]
fn the_server_embeds_an_exact_copy_of_the_web_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut compared = 0;
    for dir in ["demo", "src"] {
        let original = files(&root.join("clients/web").join(dir));
        let copy = files(&root.join("server/web").join(dir));
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&original),
            names(&copy),
            "clients/web/{dir} (left) and server/web/{dir} (right) hold different files: \
             run `cargo xtask sync-web`"
        );
        for (name, body) in &original {
            assert!(
                copy[name] == *body,
                "server/web/{dir}/{name} differs from clients/web/{dir}/{name}: run `cargo xtask sync-web`"
            );
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} assets compared");
}
