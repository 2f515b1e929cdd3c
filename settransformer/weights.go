package settransformer

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/isab-vk/isab-vk/internal/record"
	"github.com/isab-vk/isab-vk/safetensors"
	"github.com/isab-vk/isab-vk/vk"
)

// loader uploads the tensors of a state_dict, checking each key's shape and
// remembering which keys it used, so that leftovers can be reported.
type loader struct {
	f    *safetensors.File
	dev  *vk.Device
	used map[string]bool
	bufs []*vk.Buffer
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// shape returns the shape of key, or an error naming a missing key.
func (l *loader) shape(key string) ([]int, error) {
	t, ok := l.f.Get(key)
	if !ok {
		return nil, fmt.Errorf("settransformer: weights lack the key %q", key)
	}
	return t.Shape, nil
}

// dims returns the two dimensions of a matrix key.
func (l *loader) dims(key string) (rows, cols int, err error) {
	s, err := l.shape(key)
	if err != nil {
		return 0, 0, err
	}
	if len(s) != 2 || s[0] < 1 || s[1] < 1 {
		return 0, 0, fmt.Errorf("settransformer: %s has shape %s, want a matrix", key, shapeString(s))
	}
	return s[0], s[1], nil
}

// load uploads key after checking that its shape is want.
func (l *loader) load(key string, want ...int) (*vk.Buffer, error) {
	t, ok := l.f.Get(key)
	if !ok {
		return nil, fmt.Errorf("settransformer: weights lack the key %q", key)
	}
	if !slices.Equal(t.Shape, want) {
		return nil, fmt.Errorf("settransformer: %s has shape %s, want %s", key, shapeString(t.Shape), shapeString(want))
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("settransformer: %s has dtype %s, want F32, F16, BF16 or F64", key, t.DType)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("settransformer: %s: %w", key, err)
	}
	b, err := vk.BufferFrom(l.dev, v)
	if err != nil {
		return nil, fmt.Errorf("settransformer: uploading %s: %w", key, err)
	}
	l.used[key] = true
	l.bufs = append(l.bufs, b)
	return b, nil
}

// unused reports the keys that no load used.
func (l *loader) unused() error {
	var extra []string
	for _, name := range l.f.Names() {
		if !l.used[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("settransformer: unexpected key(s) in the weights: %q", extra)
	}
	return nil
}

func (l *loader) free() {
	for _, b := range l.bufs {
		b.Free()
	}
	l.bufs = nil
}

// linear loads a PyTorch Linear(in, out) with a bias.
func (l *loader) linear(prefix string, in, out int) (record.Linear, error) {
	w, err := l.load(prefix+"weight", out, in)
	if err != nil {
		return record.Linear{}, err
	}
	b, err := l.load(prefix+"bias", out)
	if err != nil {
		return record.Linear{}, err
	}
	return record.Linear{W: w, B: b, In: in, Out: out}, nil
}

// layerNorm loads a PyTorch LayerNorm(dim) with its affine weight and bias
// (eps LayerNormEps).
func (l *loader) layerNorm(prefix string, dim int) (*record.LayerNorm, error) {
	w, err := l.load(prefix+"weight", dim)
	if err != nil {
		return nil, err
	}
	b, err := l.load(prefix+"bias", dim)
	if err != nil {
		return nil, err
	}
	return &record.LayerNorm{W: w, B: b, Dim: dim, Eps: LayerNormEps}, nil
}

// mab loads MAB(dimQ, dimK, dim) under prefix ("enc.0.mab0." and the like).
func (l *loader) mab(prefix string, dimQ, dimK, dim, heads int, ln bool) (*mab, error) {
	m := &mab{dim: dim, heads: heads}
	var err error
	if m.fcQ, err = l.linear(prefix+"fc_q.", dimQ, dim); err != nil {
		return nil, err
	}
	if m.fcK, err = l.linear(prefix+"fc_k.", dimK, dim); err != nil {
		return nil, err
	}
	if m.fcV, err = l.linear(prefix+"fc_v.", dimK, dim); err != nil {
		return nil, err
	}
	if m.fcO, err = l.linear(prefix+"fc_o.", dim, dim); err != nil {
		return nil, err
	}
	if ln {
		if m.ln0, err = l.layerNorm(prefix+"ln0.", dim); err != nil {
			return nil, err
		}
		if m.ln1, err = l.layerNorm(prefix+"ln1.", dim); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// params loads a learned [1, rows, dim] parameter (I or S) and returns its
// rows.
func (l *loader) params(key string, dim int) (*vk.Buffer, int, error) {
	s, err := l.shape(key)
	if err != nil {
		return nil, 0, err
	}
	if len(s) != 3 || s[0] != 1 || s[1] < 1 || s[2] != dim {
		return nil, 0, fmt.Errorf("settransformer: %s has shape %s, want [1, rows, %d]", key, shapeString(s), dim)
	}
	b, err := l.load(key, s...)
	return b, s[1], err
}

func (l *loader) isab(prefix string, dimIn, dim, heads int, ln bool) (*isabBlock, error) {
	b := &isabBlock{}
	var err error
	if b.inds, b.m, err = l.params(prefix+"I", dim); err != nil {
		return nil, err
	}
	if b.mab0, err = l.mab(prefix+"mab0.", dim, dimIn, dim, heads, ln); err != nil {
		return nil, err
	}
	if b.mab1, err = l.mab(prefix+"mab1.", dimIn, dim, dim, heads, ln); err != nil {
		return nil, err
	}
	return b, nil
}

func (l *loader) sab(prefix string, dimIn, dim, heads int, ln bool) (*sabBlock, error) {
	m, err := l.mab(prefix+"mab.", dimIn, dimIn, dim, heads, ln)
	if err != nil {
		return nil, err
	}
	return &sabBlock{mab: m}, nil
}

func (l *loader) pma(prefix string, dim, heads int, ln bool) (*pmaBlock, error) {
	b := &pmaBlock{}
	var err error
	if b.seeds, b.k, err = l.params(prefix+"S", dim); err != nil {
		return nil, err
	}
	if b.mab, err = l.mab(prefix+"mab.", dim, dim, dim, heads, ln); err != nil {
		return nil, err
	}
	return b, nil
}

// resolve works out the configuration from the options, the metadata and
// the weights' shapes, in that order of precedence.
func resolve(f *safetensors.File, opts Options) (Config, error) {
	cfg, err := resolveKind(f.Metadata, opts)
	if err != nil {
		return cfg, err
	}
	l := &loader{f: f}
	if err := l.widths(&cfg); err != nil {
		return cfg, err
	}
	if err := l.setSizes(&cfg); err != nil {
		return cfg, err
	}
	if err := resolveHeads(&cfg, f.Metadata, opts); err != nil {
		return cfg, err
	}
	if err := checkMetadata(cfg, f.Metadata, opts); err != nil {
		return cfg, err
	}
	cfg.LN, err = resolveLN(f, opts)
	return cfg, err
}

// resolveKind returns a configuration holding the kind of model that the
// options, else the metadata, name.
func resolveKind(meta map[string]string, opts Options) (Config, error) {
	cfg := Config{Kind: opts.Kind}
	if cfg.Kind == "" {
		cfg.Kind = meta["kind"]
	}
	if !IsKind(cfg.Kind) {
		if cfg.Kind == "" {
			return cfg, fmt.Errorf("settransformer: the weights' metadata names no kind; give one of %s", strings.Join(Kinds(), ", "))
		}
		return cfg, fmt.Errorf("settransformer: unknown kind %q, want one of %s", cfg.Kind, strings.Join(Kinds(), ", "))
	}
	return cfg, nil
}

// widths reads Dim, DimIn and DimOut from the weights' shapes.
func (l *loader) widths(cfg *Config) error {
	var err error
	switch cfg.Kind {
	case KindModel:
		cfg.Dim, cfg.DimIn, err = l.dims("enc.0.mab0.fc_k.weight")
		if err == nil {
			cfg.DimOut, _, err = l.dims("dec.3.weight")
		}
	case KindISAB:
		cfg.Dim, cfg.DimIn, err = l.dims("mab0.fc_k.weight")
	case KindSAB:
		cfg.Dim, cfg.DimIn, err = l.dims("mab.fc_q.weight")
	case KindPMA:
		cfg.Dim, cfg.DimIn, err = l.dims("mab.fc_q.weight")
	}
	if cfg.DimOut == 0 {
		cfg.DimOut = cfg.Dim
	}
	return err
}

// setSizes reads NumInds and NumSeeds from the shapes of I and S.
func (l *loader) setSizes(cfg *Config) error {
	rows := func(key string) (int, error) {
		s, err := l.shape(key)
		if err != nil {
			return 0, err
		}
		if len(s) != 3 || s[0] != 1 || s[1] < 1 {
			return 0, fmt.Errorf("settransformer: %s has shape %s, want [1, rows, %d]", key, shapeString(s), cfg.Dim)
		}
		return s[1], nil
	}
	var err error
	switch cfg.Kind {
	case KindModel:
		if cfg.NumInds, err = rows("enc.0.I"); err == nil {
			cfg.NumSeeds, err = rows("dec.0.S")
		}
	case KindISAB:
		cfg.NumInds, err = rows("I")
	case KindPMA:
		cfg.NumSeeds, err = rows("S")
	}
	return err
}

// resolveHeads sets Heads from the options, else the metadata, and checks
// that they divide Dim.
func resolveHeads(cfg *Config, meta map[string]string, opts Options) error {
	if opts.Heads < 0 || opts.NumInds < 0 {
		return fmt.Errorf("settransformer: heads (%d) and num_inds (%d) must be positive", opts.Heads, opts.NumInds)
	}
	cfg.Heads = opts.Heads
	if cfg.Heads == 0 {
		v, ok, err := metaInt(meta, "heads")
		if err != nil {
			return err
		}
		if !ok || v == 0 {
			return fmt.Errorf("settransformer: the number of heads is in neither the options nor the metadata")
		}
		cfg.Heads = v
	}
	if cfg.Dim%cfg.Heads != 0 {
		return fmt.Errorf("settransformer: dim %d is not a multiple of heads %d", cfg.Dim, cfg.Heads)
	}
	return nil
}

// checkMetadata checks that the inducing points (or a PMA's seeds) that
// the options or metadata name, and the widths the metadata names, match
// the weights.
func checkMetadata(cfg Config, meta map[string]string, opts Options) error {
	held, what := cfg.NumInds, "inducing points"
	if cfg.Kind == KindPMA {
		held, what = cfg.NumSeeds, "seeds"
	}
	if opts.NumInds > 0 && cfg.Kind != KindSAB && opts.NumInds != held {
		return fmt.Errorf("settransformer: num_inds %d was given, but the weights hold %d %s", opts.NumInds, held, what)
	}
	if v, ok, err := metaInt(meta, "num_inds"); err != nil {
		return err
	} else if ok && cfg.Kind != KindSAB && v != held {
		return fmt.Errorf("settransformer: metadata num_inds=%d, but the weights hold %d %s", v, held, what)
	}
	for _, c := range []struct {
		key  string
		want int
		ok   bool
	}{
		{"dim", cfg.Dim, true},
		{"dim_in", cfg.DimIn, true},
		{"num_outputs", cfg.NumSeeds, cfg.Kind == KindModel},
		{"dim_output", cfg.DimOut, cfg.Kind == KindModel},
	} {
		if !c.ok {
			continue
		}
		if v, ok, err := metaInt(meta, c.key); err != nil {
			return err
		} else if ok && v != c.want {
			return fmt.Errorf("settransformer: metadata %s=%d, but the weights show %d", c.key, v, c.want)
		}
	}
	return nil
}

// resolveLN says whether the MABs have LayerNorms: from the options, else
// the metadata, else whether the weights hold ln0/ln1 keys.
func resolveLN(f *safetensors.File, opts Options) (bool, error) {
	if opts.LN != nil {
		return *opts.LN, nil
	}
	v, ok, err := metaBool(f.Metadata, "ln")
	if err != nil || ok {
		return v, err
	}
	for _, name := range f.Names() {
		if strings.Contains(name, "ln0.") || strings.Contains(name, "ln1.") {
			return true, nil
		}
	}
	return false, nil
}
