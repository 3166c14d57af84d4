//! The mobile bindings from the real foreign languages, against a real server: the generated
//! Python bindings under pytest, and the generated Kotlin bindings compiled with a Kotlin
//! compiler and run on the JVM. The scenarios live in `ffi/tests/python` and `ffi/tests/kotlin`;
//! this file builds the library, generates the bindings, starts the server and runs them.
//!
//! The tools come from `scripts/install-test-tools` (pytest, the Kotlin compiler from npm,
//! Debian's JNA); a missing tool fails the test with that hint.

use std::path::PathBuf;
use std::sync::Mutex;

use loopwork_tests::tools::{target_dir, tool, workspace};
use loopwork_tests::{Backend, TestServer};

/// Builds the cdylib and `uniffi-bindgen` (usually already built by `cargo test --workspace`),
/// once per test process.
fn build_library() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(lib) = built.as_ref() {
        return lib.clone();
    }
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args(["build", "--locked", "-p", "loopwork-ffi", "--features", "bindgen", "--lib", "--bin", "uniffi-bindgen"])
        .status()
        .expect("run cargo");
    assert!(status.success(), "building loopwork-ffi failed");
    let lib = target_dir().join("debug").join(format!(
        "{}loopwork_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.exists(), "{} was not built", lib.display());
    *built = Some(lib.clone());
    lib
}

/// Generates the bindings for `language` into a fresh directory, with the library beside them.
fn generate(language: &str) -> tempfile::TempDir {
    let lib = build_library();
    let out = tempfile::tempdir().expect("temp dir");
    let bindgen = target_dir().join("debug").join(format!("uniffi-bindgen{}", std::env::consts::EXE_SUFFIX));
    let output = std::process::Command::new(bindgen)
        .current_dir(workspace().join("ffi"))
        .args(["generate", "--no-format", "--language", language, "--out-dir"])
        .arg(out.path())
        .arg("--library")
        .arg(&lib)
        .output()
        .expect("run uniffi-bindgen");
    assert!(output.status.success(), "uniffi-bindgen failed: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::copy(&lib, out.path().join(lib.file_name().expect("file name"))).expect("copy the library");
    out
}

async fn run(what: &str, command: &mut tokio::process::Command) {
    let output = command.output().await.unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{what} failed ({}):\n{stdout}\n{stderr}", output.status);
    println!("{what}:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bindings_under_pytest() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bindings = generate("python");
    let python = tool("LOOPWORK_PYTHON", &[], "python3");
    run(
        "pytest",
        tokio::process::Command::new(python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(workspace().join("ffi/tests/python"))
            .env("PYTHONPATH", bindings.path())
            .env("LOOPWORK_SERVER_URL", &server.base),
    )
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kotlin_bindings_on_the_jvm() {
    let server = TestServer::start(Backend::Sqlite).await;
    let bindings = generate("kotlin");
    let kotlinc = tool(
        "LOOPWORK_KOTLINC",
        &[target_dir().join("test-tools/node_modules/kotlin-compiler/bin/kotlinc")],
        "kotlinc",
    );
    let jna = tool("LOOPWORK_JNA_JAR", &[PathBuf::from("/usr/share/java/jna.jar")], "jna.jar");
    let generated = bindings.path().join("com/loopwork/core/loopwork_ffi.kt");
    let jar = bindings.path().join("bindings-test.jar");
    run(
        "kotlinc",
        tokio::process::Command::new(kotlinc)
            .arg(&generated)
            .arg(workspace().join("ffi/tests/kotlin/BindingsTest.kt"))
            .arg("-cp")
            .arg(&jna)
            .args(["-include-runtime", "-nowarn", "-d"])
            .arg(&jar),
    )
    .await;
    let classpath = std::env::join_paths([&jar, &jna]).expect("class path");
    run(
        "the Kotlin scenario",
        tokio::process::Command::new("java")
            .arg(format!("-Djna.library.path={}", bindings.path().display()))
            .arg("-cp")
            .arg(classpath)
            .arg("com.loopwork.test.BindingsTestKt")
            .env("LOOPWORK_SERVER_URL", &server.base),
    )
    .await;
    server.stop().await;
}

/// There is no Swift toolchain here: the Swift bindings are generated as they would be for the
/// iOS build, and checked for the API docs/mobile.md shows.
#[test]
fn swift_bindings_are_generated_with_the_documented_api() {
    let bindings = generate("swift");
    let swift = std::fs::read_to_string(bindings.path().join("LoopworkCore.swift")).expect("LoopworkCore.swift");
    let header = std::fs::read_to_string(bindings.path().join("LoopworkCoreFFI.h")).expect("LoopworkCoreFFI.h");
    assert!(bindings.path().join("LoopworkCoreFFI.modulemap").exists());
    for api in [
        "open class Loopwork",
        "public static func `open`(dir: String, transport: Transport)throws  -> Loopwork",
        "public protocol Transport",
        "public protocol ChangeObserver",
        "func signIn(serverUrl: String, login: String, password: String, deviceName: String) throws  -> SessionInfo",
        "func listOrders(filter: ListFilter) throws  -> [OrderSummary]",
        "func confirm(orderId: String, rating: UInt8, comment: String?) throws",
        "func sync() throws  -> SyncReport",
        "enum LoopworkError: Swift.Error",
        "case UpgradeRequired(messageEn: String, messageZh: String",
        "case Failed(detail: String",
    ] {
        assert!(swift.contains(api), "the Swift bindings lack `{api}`");
    }
    assert!(header.contains("uniffi_loopwork_ffi_fn_method_loopwork_sync"));
}
