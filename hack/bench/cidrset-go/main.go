// Command cidrset-go runs the allocator benchmark scenarios against upstream's cidrset package
// (k8s.io/kubernetes/pkg/controller/nodeipam/ipam/cidrset, metrics included) and prints one JSON line.
//
// It is driven by hack/bench/allocator/bench.ts, which runs the same scenarios in TypeScript with the
// same pseudo-random sequence (xorshift32 from the same seed) and compares the checksums.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"time"

	"k8s.io/kubernetes/pkg/controller/nodeipam/ipam/cidrset"
	netutils "k8s.io/utils/net"
)

type result struct {
	Scenario string  `json:"scenario"`
	Ops      int     `json:"ops"`
	BestNs   int64   `json:"bestNs"`
	OpsPerS  float64 `json:"opsPerSecond"`
	Checksum string  `json:"checksum,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// xorshift32, identical to the TypeScript side.
type rng struct{ x uint32 }

func (r *rng) next() uint32 {
	r.x ^= r.x << 13
	r.x ^= r.x >> 17
	r.x ^= r.x << 5
	return r.x
}

// checksum is FNV-1a over the CIDR texts joined by newlines, as the TypeScript side computes it.
func checksum(cidrs []*net.IPNet) string {
	h := fnv.New32a()
	for i, c := range cidrs {
		if i > 0 {
			h.Write([]byte{'\n'})
		}
		h.Write([]byte(c.String()))
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

func newSet(cluster string, mask int) (*cidrset.CidrSet, error) {
	_, clusterCIDR, err := netutils.ParseCIDRSloppy(cluster)
	if err != nil {
		return nil, err
	}
	return cidrset.NewCIDRSet(clusterCIDR, mask)
}

// fill allocates every subnet of a fresh set, `reps` times; the best run counts.
func fill(cluster string, mask, reps int) result {
	res := result{Scenario: "fill"}
	for rep := 0; rep < reps; rep++ {
		set, err := newSet(cluster, mask)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		held := make([]*net.IPNet, 0, 1<<20)
		start := time.Now()
		for {
			c, err := set.AllocateNext()
			if err != nil {
				break
			}
			held = append(held, c)
		}
		elapsed := time.Since(start).Nanoseconds()
		if res.BestNs == 0 || elapsed < res.BestNs {
			res.BestNs = elapsed
		}
		res.Ops = len(held)
		res.Checksum = checksum(held)
	}
	return res
}

// churn allocates `held` subnets, then times `ops` rounds of release(random held) + allocateNext.
func churn(cluster string, mask, heldCount, ops int, seed uint32, reps int) result {
	res := result{Scenario: "churn", Ops: ops}
	for rep := 0; rep < reps; rep++ {
		set, err := newSet(cluster, mask)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		held := make([]*net.IPNet, heldCount)
		for i := range held {
			if held[i], err = set.AllocateNext(); err != nil {
				res.Error = err.Error()
				return res
			}
		}
		r := rng{x: seed}
		n := uint32(heldCount)
		start := time.Now()
		for i := 0; i < ops; i++ {
			j := r.next() % n
			if err := set.Release(held[j]); err != nil {
				res.Error = err.Error()
				return res
			}
			if held[j], err = set.AllocateNext(); err != nil {
				res.Error = err.Error()
				return res
			}
		}
		elapsed := time.Since(start).Nanoseconds()
		if res.BestNs == 0 || elapsed < res.BestNs {
			res.BestNs = elapsed
		}
		res.Checksum = checksum(held)
	}
	return res
}

// occupy parses and occupies every CIDR text of a file in a fresh set, as a restarting controller does.
func occupy(cluster string, mask int, file string, reps int) result {
	res := result{Scenario: "occupy"}
	texts, err := readLines(file)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Ops = len(texts)
	for rep := 0; rep < reps; rep++ {
		set, err := newSet(cluster, mask)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		start := time.Now()
		for _, text := range texts {
			_, c, err := netutils.ParseCIDRSloppy(text)
			if err == nil {
				err = set.Occupy(c)
			}
			if err != nil {
				res.Error = err.Error()
				return res
			}
		}
		elapsed := time.Since(start).Nanoseconds()
		if res.BestNs == 0 || elapsed < res.BestNs {
			res.BestNs = elapsed
		}
		// What is left free, in allocation order, shows both sides marked the same subnets.
		var rest []*net.IPNet
		for {
			c, err := set.AllocateNext()
			if err != nil {
				break
			}
			rest = append(rest, c)
		}
		res.Checksum = checksum(rest)
	}
	return res
}

func readLines(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if line := scanner.Text(); line != "" {
			lines = append(lines, line)
		}
	}
	return lines, scanner.Err()
}

func main() {
	scenario := flag.String("scenario", "", "fill | churn | occupy")
	cluster := flag.String("cluster", "10.0.0.0/8", "cluster CIDR")
	mask := flag.Int("mask", 24, "node mask size")
	held := flag.Int("held", 0, "churn: subnets held before timing starts")
	ops := flag.Int("ops", 0, "churn: release+allocate rounds")
	seed := flag.Uint("seed", 1, "churn: xorshift32 seed")
	file := flag.String("file", "", "occupy: file with one CIDR per line")
	reps := flag.Int("reps", 3, "repetitions; the fastest counts")
	flag.Parse()

	var res result
	switch *scenario {
	case "fill":
		res = fill(*cluster, *mask, *reps)
	case "churn":
		res = churn(*cluster, *mask, *held, *ops, uint32(*seed), *reps)
	case "occupy":
		res = occupy(*cluster, *mask, *file, *reps)
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", *scenario)
		os.Exit(2)
	}
	if res.BestNs > 0 {
		res.OpsPerS = float64(res.Ops) / (float64(res.BestNs) / 1e9)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}
