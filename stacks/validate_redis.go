package stacks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// redisFixed is, per Redis release line, the first version without the 2025 Lua script CVEs
// (CVE-2025-49844 "RediShell" use-after-free RCE, CVE-2025-46817, -46818, -46819). Lines not listed
// (older than 6.2, or unknown) are refused: a pinned image must be one of these or newer.
var redisFixed = map[string][3]int{"6.2": {6, 2, 20}, "7.2": {7, 2, 11}, "7.4": {7, 4, 6}, "8.0": {8, 0, 4}, "8.2": {8, 2, 2}}

// redisTagRE is a Redis image tag: an exact version, optionally with a variant (-alpine, -bookworm).
var redisTagRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[a-z0-9.]+)?$`)

// checkRedisImage refuses a Redis image that is not pinned to an exact version (or a digest) or
// whose version has the 2025 Lua CVEs. A digest-pinned image cannot be checked here; its tag, when
// given as well (redis:7.4.6-alpine@sha256:…), is.
func checkRedisImage(image string) error {
	ref := image
	digest := strings.Contains(ref, "@sha256:")
	if digest {
		ref = ref[:strings.Index(ref, "@")]
	}
	tag := ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		tag = ref[i+1:]
	}
	if tag == "" {
		if digest {
			return nil
		}
		return fmt.Errorf("%q has no tag: pin an exact version such as redis:7.4.6-alpine, or a digest", image)
	}
	m := redisTagRE.FindStringSubmatch(tag)
	if m == nil {
		return fmt.Errorf("%q: tag %q is not an exact Redis version (x.y.z[-variant]); a moving tag such as 7.4 or alpine may pull a vulnerable build", image, tag)
	}
	var v [3]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	line := fmt.Sprintf("%d.%d", v[0], v[1])
	fixed, known := redisFixed[line]
	newerLine := v[0] > 8 || (v[0] == 8 && v[1] > 2)
	if newerLine || (known && (v[2] >= fixed[2])) {
		return nil
	}
	if !known {
		return fmt.Errorf("%q: Redis %s is not a supported line with the 2025 Lua CVE fixes (CVE-2025-49844 and others); use 7.4.6 or later (e.g. redis:7.4.6-alpine)", image, tag)
	}
	return fmt.Errorf("%q: Redis %d.%d.%d has the 2025 Lua script CVEs (CVE-2025-49844 RCE and others); use %d.%d.%d or later", image, v[0], v[1], v[2], fixed[0], fixed[1], fixed[2])
}
