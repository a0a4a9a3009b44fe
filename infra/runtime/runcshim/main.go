// kfstack-runc-shim sits in front of the real runc on hosts whose capability bounding set lacks
// capabilities that container specs ask for (CAP_SYS_RESOURCE on some microVMs). Docker's
// --privileged and kubelet's critical pods (oomScoreAdj -998) then fail inside runc with
// "operation not permitted". The shim edits the OCI spec before runc sees it: capabilities this
// process cannot hold are removed, and an oomScoreAdj below the current one (lowering it needs
// CAP_SYS_RESOURCE) is raised to the current value. Everything else passes through unchanged.
//
// Hosts that have every capability are left alone: the shim finds nothing to remove.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capNames is the kernel's capability numbering (include/uapi/linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

const sysResource = 24

// statusMask reads one capability mask (CapBnd, CapEff) of this process from /proc/self/status.
func statusMask(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return mask, err == nil
		}
	}
	return 0, false
}

// unavailable lists the known capabilities missing from the bounding set: a container asking
// for one of them cannot be created by this process, whatever it does.
func unavailable() map[string]bool {
	missing := map[string]bool{}
	bnd, ok := statusMask("CapBnd")
	if !ok {
		return missing
	}
	for bit, name := range capNames {
		if bnd&(1<<uint(bit)) == 0 {
			missing[name] = true
		}
	}
	return missing
}

func removeCaps(caps map[string]any, missing map[string]bool) bool {
	changed := false
	for _, set := range []string{"bounding", "effective", "inheritable", "permitted", "ambient"} {
		list, ok := caps[set].([]any)
		if !ok {
			continue
		}
		kept := make([]any, 0, len(list))
		for _, c := range list {
			if name, ok := c.(string); ok && missing[name] {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	return changed
}

// raiseOOMScore replaces an oomScoreAdj this process may not set (a value below its own, without
// CAP_SYS_RESOURCE in effect) with its own value, which the container would inherit anyway.
func raiseOOMScore(proc map[string]any) bool {
	want, ok := proc["oomScoreAdj"].(json.Number)
	if !ok {
		return false
	}
	if eff, ok := statusMask("CapEff"); ok && eff&(1<<sysResource) != 0 {
		return false
	}
	wanted, err := want.Int64()
	if err != nil {
		return false
	}
	raw, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return false
	}
	current, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil || wanted >= current {
		return false
	}
	proc["oomScoreAdj"] = json.Number(strconv.FormatInt(current, 10))
	return true
}

// editSpec rewrites the JSON file at path in place when the process part needs a change.
// `process` picks that part: the whole document for `exec --process`, .process for a bundle.
func editSpec(path string, process func(map[string]any) map[string]any, missing map[string]bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep large integers (uids, limits) exactly as they were
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	proc := process(doc)
	if proc == nil {
		return nil
	}
	changed := raiseOOMScore(proc)
	if caps, ok := proc["capabilities"].(map[string]any); ok && removeCaps(caps, missing) {
		changed = true
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}

// Global runc flags that take a value: their values are skipped when looking for the command.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true,
	"--rootless": true}

// command finds runc's sub-command (create, run, exec, ...) after the global flags.
func command(args []string) int {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if globalWithValue[a] {
			i++
			continue
		}
		if !strings.HasPrefix(a, "-") {
			return i
		}
	}
	return -1
}

// flagValue returns the value of --long/-short (as "--long v", "--long=v" or "-s v") after index from.
func flagValue(args []string, from int, long, short string) (string, bool) {
	value, found := "", false
	for i := from; i < len(args); i++ {
		switch {
		case (args[i] == long || args[i] == short) && i+1 < len(args):
			value, found = args[i+1], true
			i++
		case strings.HasPrefix(args[i], long+"="):
			value, found = strings.TrimPrefix(args[i], long+"="), true
		}
	}
	return value, found
}

// realRunc finds the runc this shim stands in front of, never the shim itself.
func realRunc() (string, error) {
	self, _ := os.Executable()
	candidates := []string{os.Getenv("KFSTACK_REAL_RUNC"), self + ".real", "/usr/sbin/runc", "/usr/bin/runc",
		"/usr/local/sbin/runc.real"}
	selfInfo, _ := os.Stat(self)
	for _, c := range candidates {
		if c == "" {
			continue
		}
		info, err := os.Stat(c)
		if err != nil || info.IsDir() || (selfInfo != nil && os.SameFile(info, selfInfo)) {
			continue
		}
		return c, nil
	}
	return "", fmt.Errorf("no runc found (set KFSTACK_REAL_RUNC, or install runc at /usr/sbin/runc)")
}

// probe reports what this process holds: the privileged-container check runs it as the
// container's entrypoint and reads the answer.
func probe() {
	bnd, _ := statusMask("CapBnd")
	missing := make([]string, 0)
	for name := range unavailable() {
		missing = append(missing, name)
	}
	fmt.Printf("kfstack-probe ok CapBnd=%016x missing=%s\n", bnd, strings.Join(missing, ","))
}

func main() {
	args := os.Args
	if filepath.Base(args[0]) == "kfstack-probe" || (len(args) == 2 && args[1] == "kfstack-probe") {
		probe()
		return
	}
	missing := unavailable()
	if i := command(args); i > 0 {
		var err error
		switch args[i] {
		case "create", "run":
			bundle, _ := flagValue(args, i+1, "--bundle", "-b")
			if bundle == "" {
				bundle = "."
			}
			err = editSpec(filepath.Join(bundle, "config.json"), func(d map[string]any) map[string]any {
				p, _ := d["process"].(map[string]any)
				return p
			}, missing)
		case "exec":
			if spec, ok := flagValue(args, i+1, "--process", "-p"); ok {
				err = editSpec(spec, func(d map[string]any) map[string]any { return d }, missing)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfstack-runc-shim: leaving the spec unchanged:", err)
		}
	}
	real, err := realRunc()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfstack-runc-shim:", err)
		os.Exit(127)
	}
	args[0] = real
	if err := syscall.Exec(real, args, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "kfstack-runc-shim: exec", real+":", err)
		os.Exit(127)
	}
}
