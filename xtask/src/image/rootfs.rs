//! What a FROM-scratch image needs besides the binary: the dynamic loader and
//! exactly the shared libraries the binary links (asked from `ldd`, taken from
//! this host), plus the few /etc files glibc reads at run time.
//!
//! glibc 2.34+ has nss_files and nss_dns inside libc.so.6, so `hosts: files dns`
//! resolves names without any libnss_* module; the image tests prove it.

use super::archive::Layer;
use anyhow::{Context, Result, bail};
use std::path::Path;

/// The user every image runs as (distroless' `nonroot`).
pub const NONROOT: u32 = 65532;

/// Where the service binary lives inside the image.
pub fn binary_path(bin: &str) -> String {
    format!("/usr/local/bin/{bin}")
}

/// Paths (as the loader will look them up) of the loader and every shared
/// library `binary` needs, in ldd's order.
pub fn shared_libraries(binary: &Path) -> Result<Vec<String>> {
    let sh = xshell::Shell::new()?;
    let out = xshell::cmd!(sh, "ldd {binary}")
        .ignore_status()
        .output()
        .with_context(|| format!("running ldd on {}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static binary makes ldd exit 1 with "not a dynamic executable".
        bail!(
            "ldd {}: {}{}",
            binary.display(),
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_ldd(&text)
}

fn parse_ldd(text: &str) -> Result<Vec<String>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, `/lib64/ld-linux-x86-64.so.2 (0x...)`,
        // `linux-vdso.so.1 (0x...)` (in the kernel, nothing to copy).
        let path = match line.split_once("=>") {
            Some((name, rest)) => {
                let target = rest.trim().split(' ').next().unwrap_or("");
                if target == "not" {
                    bail!("shared library {} not found on this host", name.trim());
                }
                target.to_string()
            }
            None => line.split(' ').next().unwrap_or("").to_string(),
        };
        if path.starts_with('/') {
            libs.push(path);
        }
    }
    Ok(libs)
}

/// The base layer: /etc files and the libraries. Services with the same
/// libraries get the identical layer, which the engine and registry store once.
pub fn base_layer(libraries: &[String]) -> Result<Layer> {
    let mut layer = Layer::default();
    layer.file(
        "/etc/passwd",
        0o644,
        format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n")
            .into_bytes(),
    );
    layer.file(
        "/etc/group",
        0o644,
        format!("root:x:0:\nnonroot:x:{NONROOT}:\n").into_bytes(),
    );
    layer.file(
        "/etc/nsswitch.conf",
        0o644,
        b"passwd: files\ngroup: files\nhosts: files dns\n".to_vec(),
    );
    for lib in libraries {
        // fs::read follows symlinks (/lib64/ld-linux-x86-64.so.2 -> ...): the image gets a plain file.
        let data = std::fs::read(lib).with_context(|| format!("reading {lib}"))?;
        layer.file(lib, 0o755, data);
    }
    Ok(layer)
}

/// The top layer: only the service binary.
pub fn binary_layer(binary: &Path, bin: &str) -> Result<Layer> {
    let mut layer = Layer::default();
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    layer.file(&binary_path(bin), 0o755, data);
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ff)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x1)\n\
                    \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x2)\n\t/lib64/ld-linux-x86-64.so.2 (0x3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1 not found"));
    }

    #[test]
    fn ldd_finds_libc_and_loader_of_a_host_binary() {
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(libs.iter().any(|l| l.ends_with("/libc.so.6")), "{libs:?}");
        assert!(libs.iter().any(|l| l.contains("ld-linux")), "{libs:?}");
    }
}
