package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTick = 100

// cpuTime returns the user plus system CPU time process pid has used, from
// /proc/PID/stat ("self" for this process).
func cpuTime(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields count from its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unreadable /proc stat %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable utime/stime in /proc stat %q", stat)
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// rssBytes returns VmRSS from /proc/PID/status.
func rssBytes(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// parseVmRSS reads the "VmRSS: N kB" line of /proc/PID/status.
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no VmRSS in /proc status")
}

// openFDs counts the entries of /proc/PID/fd.
func openFDs(pid string) (int, error) {
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

// machineBusy returns the CPU time every process on the machine has used
// (all of /proc/stat's first line but idle and iowait), so that what
// neither the daemon nor the benchmark used shows as other load.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat sums the busy ticks of the "cpu" line of /proc/stat:
// user nice system idle iowait irq softirq steal (guest time is already
// in user).
func parseProcStat(stat string) (time.Duration, error) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] != "cpu" {
			continue
		}
		var busy int64
		for i, s := range f[1:9] {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("unreadable /proc/stat cpu line %q", line)
			}
			if i != 3 && i != 4 { // idle, iowait
				busy += v
			}
		}
		return time.Duration(busy) * time.Second / clockTick, nil
	}
	return 0, fmt.Errorf("no cpu line in /proc/stat")
}

// loadAverage returns /proc/loadavg's first three fields, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
