package ops

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/isab-vk/isab-vk/ref"
	"github.com/isab-vk/isab-vk/vk"
)

// TestAttentionSteps records an attention over three sources one at a
// time, the second and third computed (here: copied by Add) into the same
// buffer in turn, and compares with the float64 reference over the
// concatenated keys. With a small binding range the queries come in
// several pieces, each with partial results of its own.
func TestAttentionSteps(t *testing.T) {
	for _, small := range []bool{false, true} {
		name := "one-piece"
		var opts []Option
		if small {
			name = "pieces"
			opts = append(opts, smallBindings(1024))
		}
		t.Run(name, func(t *testing.T) {
			configs(t, func(t *testing.T, o *Ops) {
				if units := testAttentionSteps(t, o); small != (units > 1) {
					t.Errorf("%d pieces of queries", units)
				}
			}, false, opts...)
		})
	}
}

// testAttentionSteps runs the test and returns the number of pieces of
// batch and queries.
func testAttentionSteps(t *testing.T, o *Ops) int {
	d := o.Device()
	rng := rand.New(rand.NewPCG(31, 1))
	const B, NQ, H, dh = 2, 7, 2, 5
	const HD = H * dh
	nks := []int{3, 33, 20}
	const chunkRows = 33 // rows per batch element of the shared chunk buffer
	scale := float32(0.37)
	q := randMat(rng, 0, B*NQ, HD, HD, 1)
	// Host keys/values per source and batch element, rows of [k | v].
	kv := make([]strided, len(nks))
	for i, nk := range nks {
		kv[i] = randMat(rng, 0, B*nk, 2*HD, 2*HD, 1)
	}
	keep := make([]bool, B*(nks[1]+nks[2]))
	for i := range keep {
		keep[i] = rng.IntN(4) != 0
	}
	// Mask layout: per batch element, source 1's keys then source 2's.
	mstride := nks[1] + nks[2]
	for k := 0; k < nks[2]; k++ { // batch element 1, source 2: all masked
		keep[mstride+nks[1]+k] = false
	}
	words := make([]uint32, len(keep))
	for i, k := range keep {
		if k {
			words[i] = 1
		}
	}
	mask := upload(t, d, words)
	qb := upload(t, d, q.host)
	own := upload(t, d, kv[0].host)
	chunk := newBuf(t, d, B*chunkRows*2*HD)
	zeros := newBuf(t, d, B*chunkRows*2*HD)
	staged := []*vk.Buffer{nil, upload(t, d, padRows(kv[1].host, B, nks[1], chunkRows, 2*HD)), upload(t, d, padRows(kv[2].host, B, nks[2], chunkRows, 2*HD))}
	out := newBuf(t, d, B*NQ*HD)
	srcs := []KVSource{
		{KV: Dense(own, 0, B*nks[0], 2*HD), BatchStride: nks[0] * 2 * HD, VOff: HD, NK: nks[0]},
		{KV: Dense(chunk, 0, B*chunkRows, 2*HD), BatchStride: chunkRows * 2 * HD, VOff: HD, NK: nks[1], Mask: mask, MaskBatchStride: mstride},
		{KV: Dense(chunk, 0, B*chunkRows, 2*HD), BatchStride: chunkRows * 2 * HD, VOff: HD, NK: nks[2], Mask: mask, MaskOff: nks[1], MaskBatchStride: mstride},
		{KV: Dense(own, 0, 1, 2*HD), VOff: HD, NK: 0}, // no keys: records nothing
	}
	a := AttnArgs{Q: Dense(qb, 0, B*NQ, HD), QBatchStride: NQ * HD, Sources: srcs, Batch: B, NQ: NQ, Heads: H, DimHead: dh,
		Scale: scale, Out: Dense(out, 0, B*NQ, HD)}
	units := 0
	run(t, d, func(seq *vk.Sequence) error {
		st, err := o.NewAttentionSteps(a, scratchFor(t, d))
		if err != nil {
			return err
		}
		units = len(st.r.units)
		if err := st.Source(seq, 3); err != nil {
			return err
		}
		if err := st.Source(seq, 0); err != nil {
			return err
		}
		for i := 1; i <= 2; i++ {
			rows := B * chunkRows
			if err := o.Add(seq, Dense(staged[i], 0, rows, 2*HD), Dense(zeros, 0, rows, 2*HD), Dense(chunk, 0, rows, 2*HD), false); err != nil {
				return err
			}
			if err := st.Source(seq, i); err != nil {
				return err
			}
		}
		if err := st.Finish(seq); err != nil {
			return err
		}
		if err := st.Finish(seq); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("a second Finish: %v", err)
		}
		return nil
	})
	got := readMat(t, a.Out)
	var want []float64
	for b := 0; b < B; b++ {
		var k, v []float64
		var kp []bool
		for i, nk := range nks {
			for j := 0; j < nk; j++ {
				row := kv[i].dense[(b*nk+j)*2*HD:]
				k = append(k, row[:HD]...)
				v = append(v, row[HD:2*HD]...)
				switch i {
				case 0:
					kp = append(kp, true)
				case 1:
					kp = append(kp, keep[b*mstride+j])
				case 2:
					kp = append(kp, keep[b*mstride+nks[1]+j])
				}
			}
		}
		want = append(want, ref.Attention(q.dense[b*NQ*HD:(b+1)*NQ*HD], NQ, k, v, len(kp), H, dh, float64(scale), kp)...)
	}
	checkNMSE(t, "steps", got, want)
	return units
}

// padRows lays out b blocks of n rows of width w with a row stride of
// blocks of rows rows.
func padRows(src []float32, b, n, rows, w int) []float32 {
	out := make([]float32, b*rows*w)
	for i := 0; i < b; i++ {
		copy(out[i*rows*w:], src[i*n*w:(i+1)*n*w])
	}
	return out
}

func TestAttentionStepsErrors(t *testing.T) {
	o := testOps(t)
	d := o.Device()
	kvb := newBuf(t, d, 4*8)
	qb := newBuf(t, d, 8)
	out := newBuf(t, d, 8)
	a := AttnArgs{Q: Dense(qb, 0, 1, 4), Batch: 1, NQ: 1, Heads: 1, DimHead: 4, Scale: 1, Out: Dense(out, 0, 1, 4),
		Sources: []KVSource{{KV: Dense(kvb, 0, 2, 8), VOff: 4, NK: 2}, {KV: Dense(kvb, 0, 2, 8), VOff: 4, NK: 2}}}
	seq := d.NewSequence()
	defer seq.Close()
	st, err := o.NewAttentionSteps(a, scratchFor(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Source(seq, 2); err == nil {
		t.Error("source index out of range accepted")
	}
	if err := st.Source(seq, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Source(seq, 0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a source recorded twice: %v", err)
	}
	if err := st.Finish(seq); err == nil || !strings.Contains(err.Error(), "before source 1") {
		t.Errorf("Finish before every source: %v", err)
	}
}
