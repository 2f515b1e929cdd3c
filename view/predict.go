package view

import (
	"context"
	"errors"
	"fmt"

	"github.com/isab-vk/isab-vk/isab"
	"github.com/isab-vk/isab-vk/mixture"
	"github.com/isab-vk/isab-vk/ops"
	"github.com/isab-vk/isab-vk/vk"
)

// pass is the part of one prediction that Model records itself: a sequence
// and the buffers it writes.
type pass struct {
	m     *Model
	seq   *vk.Sequence
	temps []*vk.Buffer
}

func (p *pass) alloc(elems int) (*vk.Buffer, error) {
	b, err := p.m.dev.NewBuffer(int64(elems) * 4)
	if err != nil {
		return nil, err
	}
	p.temps = append(p.temps, b)
	return b, nil
}

// apply records y = x W^T + b for x [rows, l.in] into a new buffer.
func (p *pass) apply(l linear, x *vk.Buffer, rows int) (*vk.Buffer, error) {
	y, err := p.alloc(rows * l.out)
	if err != nil {
		return nil, err
	}
	return y, p.m.ops.Linear(p.seq, ops.Dense(x, 0, rows, l.in), ops.Dense(l.w, 0, l.out, l.in),
		&ops.Mat{Buf: l.b, Rows: 1, Cols: l.out}, ops.Dense(y, 0, rows, l.out))
}

// attention records the attention probabilities of a's queries over the nk
// keys k [nk, a.fcK.in], as the MAB computes them before it multiplies by
// the values: per head h, softmax(Q'_h K'_h^T / sqrt(dim)) with Q' =
// fc_q(queries), K' = fc_k(k). The result, [heads, nq, nk], is a new buffer.
func (p *pass) attention(a queryAttn, k *vk.Buffer, nk int) (*vk.Buffer, error) {
	m := p.m
	D, d := m.Dim, m.Dim/m.Heads
	qp, err := p.apply(a.fcQ, a.q, a.nq)
	if err != nil {
		return nil, err
	}
	kp, err := p.apply(a.fcK, k, nk)
	if err != nil {
		return nil, err
	}
	rows := m.Heads * a.nq
	scores, err := p.alloc(rows * nk)
	if err != nil {
		return nil, err
	}
	for h := 0; h < m.Heads; h++ {
		// Q'_h K'_h^T is a Linear of Q'_h by the "weights" K'_h, both
		// column slices of width d.
		qh := ops.Mat{Buf: qp, Off: h * d, Rows: a.nq, Cols: d, Ld: D}
		kh := ops.Mat{Buf: kp, Off: h * d, Rows: nk, Cols: d, Ld: D}
		if err := m.ops.Linear(p.seq, qh, kh, nil, ops.Dense(scores, h*a.nq*nk, a.nq, nk)); err != nil {
			return nil, fmt.Errorf("head %d scores: %w", h, err)
		}
	}
	probs, err := p.alloc(rows * nk)
	if err != nil {
		return nil, err
	}
	return probs, m.ops.Softmax(p.seq, ops.Dense(scores, 0, rows, nk), ops.Dense(probs, 0, rows, nk), m.scaleInv, nil, 0, 1, 0)
}

// Predict runs the model on one set of 2-D points on the device and reads
// back the mixture and the attention maps.
func (m *Model) Predict(ctx context.Context, points [][2]float64) (*Prediction, error) {
	if m.ops == nil {
		return nil, errors.New("view: Predict on a closed model")
	}
	n := len(points)
	if n == 0 {
		return nil, errors.New("view: empty point set")
	}
	x := make([]float32, 0, 2*n)
	for _, p := range points {
		x = append(x, float32(p[0]), float32(p[1]))
	}
	in, err := isab.NewTensor(m.dev, x, 1, n, 2)
	if err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	acts := []*isab.Tensor{in}
	defer func() {
		for _, t := range acts {
			t.Free()
		}
	}()
	for i, s := range m.stages {
		y, err := s.Forward(ctx, acts[i])
		if err != nil {
			return nil, fmt.Errorf("view: %s*: %w", stagePrefixes[i].prefix, err)
		}
		acts = append(acts, y)
	}
	// acts: the points, enc.0, enc.1 (the PMA's keys), dec.0, dec.1, dec.2.
	p := &pass{m: m, seq: m.dev.NewSequence()}
	defer func() {
		p.seq.Close()
		for _, b := range p.temps {
			b.Free()
		}
	}()
	ai, err := p.attention(m.isab, in.Buffer(), n)
	if err != nil {
		return nil, fmt.Errorf("view: recording the ISAB's attention: %w", err)
	}
	ap, err := p.attention(m.pma, acts[2].Buffer(), n)
	if err != nil {
		return nil, fmt.Errorf("view: recording the PMA's attention: %w", err)
	}
	out, err := p.apply(m.head, acts[5].Buffer(), m.Seeds)
	if err != nil {
		return nil, fmt.Errorf("view: recording the head: %w", err)
	}
	if err := p.seq.Run(ctx); err != nil {
		return nil, fmt.Errorf("view: running the attention maps and the head: %w", err)
	}
	return m.readPrediction(ai, ap, out, n)
}

// readPrediction reads the attention maps [heads, nq, n] of the ISAB and
// the PMA and the head's output [seeds, 5] back from the device.
func (m *Model) readPrediction(ai, ap, out *vk.Buffer, n int) (*Prediction, error) {
	pred := &Prediction{}
	for _, r := range []struct {
		buf *vk.Buffer
		nq  int
		dst *[][][]float64
	}{{ai, m.isab.nq, &pred.ISAB}, {ap, m.pma.nq, &pred.PMA}} {
		v, err := vk.Download[float32](r.buf, 0, m.Heads*r.nq*n)
		if err != nil {
			return nil, fmt.Errorf("view: reading the attention maps: %w", err)
		}
		*r.dst = make([][][]float64, m.Heads)
		for h := range *r.dst {
			rows := make([][]float64, r.nq)
			for i := range rows {
				rows[i] = make([]float64, n)
				for j, p := range v[(h*r.nq+i)*n : (h*r.nq+i+1)*n] {
					rows[i][j] = float64(p)
				}
			}
			(*r.dst)[h] = rows
		}
	}
	v, err := vk.Download[float32](out, 0, m.Seeds*mixture.Params)
	if err != nil {
		return nil, fmt.Errorf("view: reading the model's output: %w", err)
	}
	if pred.Mixture, err = mixture.FromFlat(v); err != nil {
		return nil, fmt.Errorf("view: %w", err)
	}
	return pred, nil
}
