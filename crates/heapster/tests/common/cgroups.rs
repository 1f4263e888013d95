//! Cgroups, processes and network namespaces made by a test, removed on drop even when an assertion fails.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The v1 controllers the tests account CPU and memory in.
const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory"];

#[derive(Default)]
pub struct Fixture {
    cgroups: Vec<PathBuf>,
    children: Vec<Child>,
    /// Shell commands that undo what the test set up outside cgroups (network namespaces, veth pairs).
    cleanup: Vec<String>,
}

impl Fixture {
    /// Creates cgroup `name` in every v1 controller the tests use (plus the cgroup2 tree at `unified` on hybrid
    /// hosts, where PSI lives), or under cgroup2 on a v2-only host. Returns its directories.
    pub fn cgroup(&mut self, name: &str) -> Vec<PathBuf> {
        let root = PathBuf::from("/sys/fs/cgroup");
        let roots: Vec<PathBuf> = if root.join("cpuacct").is_dir() {
            let v1 = V1_CONTROLLERS.iter().map(|c| root.join(c));
            v1.chain(Some(root.join("unified")).filter(|u| u.is_dir())).collect()
        } else {
            vec![root]
        };
        let dirs: Vec<PathBuf> = roots.iter().map(|r| r.join(name)).collect();
        for d in &dirs {
            fs::create_dir(d).unwrap_or_else(|e| {
                panic!("cannot create cgroup {}: {e}. These tests need root and a writable cgroupfs.", d.display())
            });
            self.cgroups.push(d.clone());
        }
        dirs
    }

    /// Starts `sh -c script` after moving the shell into `cgroups`, so everything it runs is accounted there.
    pub fn spawn_in(&mut self, cgroups: &[PathBuf], script: &str) {
        let moves: String = cgroups.iter().map(|d| format!("echo $$ > {}/cgroup.procs && ", d.display())).collect();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{moves} exec {script}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sh");
        self.children.push(child);
    }

    /// A network namespace joined to the host by a veth pair (169.254.77.1 on the host, .2 inside): a test host
    /// of our own, so traffic never leaves this machine. Returns the namespace's name.
    pub fn netns(&mut self, tag: &str) -> String {
        let ns = format!("hs-{tag}");
        let (host_if, ns_if) = (format!("hsv{tag}a"), format!("hsv{tag}b"));
        self.cleanup.push(format!("ip link del {host_if}"));
        self.cleanup.push(format!("ip netns del {ns}"));
        for cmd in [
            format!("ip netns add {ns}"),
            format!("ip link add {host_if} type veth peer name {ns_if}"),
            format!("ip link set {ns_if} netns {ns}"),
            format!("ip addr add 169.254.77.1/30 dev {host_if}"),
            format!("ip link set {host_if} up"),
            format!("ip netns exec {ns} ip addr add 169.254.77.2/30 dev {ns_if}"),
            format!("ip netns exec {ns} ip link set {ns_if} up"),
        ] {
            let ok = Command::new("sh").arg("-c").arg(&cmd).status().is_ok_and(|s| s.success());
            assert!(ok, "`{cmd}` failed: these tests need root and iproute2 (ip)");
        }
        ns
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for cmd in self.cleanup.iter().rev() {
            let _ = Command::new("sh").arg("-c").arg(cmd).stderr(Stdio::null()).status();
        }
        for d in self.cgroups.iter().rev() {
            // The kernel needs a moment to let go of a killed task's cgroup.
            for _ in 0..50 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
