// Package ireval evaluates OPA's compiled plan (its intermediate
// representation, the ir.Policy that `opa build -t plan` and rego target
// plugins get) of a policy's entry point, on OPA's own AST values and with
// OPA's own builtin implementations. It answers what OPA's tree-walking
// evaluator answers, at a fraction of the time and allocations, because the
// planner has already resolved every rule lookup and else-chain into
// straight-line code.
//
// New declines (with a *DeclineError) a plan it does not fully understand:
// an unsupported statement kind or builtin. Eval then never fails for any
// reason but the context (deadline, cancellation) and the conflicts OPA's
// evaluator reports as errors too (a complete rule with two values).
package ireval

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Evaluator runs one planned query. It is immutable after New and safe for
// concurrent use.
type Evaluator struct {
	funcs   []*function
	plan    *function
	maxArgs int
	data    *ast.Term
	states  sync.Pool
	// Stats of the plan, for logs and the status page.
	stats Stats
}

// Stats describes the plan an evaluator runs.
type Stats struct {
	Funcs      int // planned functions
	Constants  int // of which computed once at build time
	Statements int
	Builtins   []string
}

// Option configures New.
type Option func(*Evaluator)

// WithData sets the data document (the base documents the store would
// hold); the default is an empty object, as tenantgate's empty store gives.
func WithData(data ast.Object) Option {
	return func(e *Evaluator) { e.data = ast.NewTerm(data) }
}

// New prepares an evaluator for a plan of exactly one query. A plan that
// uses anything the evaluator does not support is declined with a
// *DeclineError.
func New(p *ir.Policy, opts ...Option) (*Evaluator, error) {
	if p == nil {
		return nil, decline("policy", "no plan")
	}
	c := &compiler{p: p}
	e, err := c.compile()
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(e)
	}
	if e.data == nil {
		e.data = ast.NewTerm(ast.NewObject())
	}
	if err := e.checkMutations(); err != nil {
		return nil, err
	}
	if err := e.foldConstants(c.constants()); err != nil {
		return nil, err
	}
	e.stats.Funcs = len(e.funcs)
	for _, f := range e.funcs {
		if f.constant {
			e.stats.Constants++
		}
		for _, b := range f.blocks {
			e.stats.Statements += countStmts(b)
		}
	}
	for _, b := range e.plan.blocks {
		e.stats.Statements += countStmts(b)
	}
	for name := range c.builtin {
		e.stats.Builtins = append(e.stats.Builtins, name)
	}
	slices.Sort(e.stats.Builtins)
	return e, nil
}

// Stats describes the plan.
func (e *Evaluator) Stats() Stats { return e.stats }

func countStmts(b *block) int {
	n := len(b.stmts)
	for i := range b.stmts {
		if b.stmts[i].block != nil {
			n += countStmts(b.stmts[i].block)
		}
		for _, nb := range b.stmts[i].blocks {
			n += countStmts(nb)
		}
	}
	return n
}

// Control codes a block returns besides k >= 0 ("leave this block and k
// more enclosing ones"; 0 is an undefined statement).
const (
	codeDone = -1 // ran to its end
	codeRet  = -2 // the function returned
	codeErr  = -3 // evaluation failed: state.err says why
)

// ErrConflict is what Eval returns (wrapped) when the policy produced two
// values for one complete rule or object key: OPA's evaluator fails then too.
var ErrConflict = errors.New("ireval: conflicting values (eval_conflict_error)")

type state struct {
	e     *Evaluator
	ctx   context.Context
	done  <-chan struct{}
	ticks uint32
	err   error

	stack []*ast.Term
	sp    int

	gen     uint32
	memoGen []uint32
	memo    []*ast.Term

	args []*ast.Term
	bres *ast.Term
	iter func(*ast.Term) error

	results []*ast.Term
}

func (e *Evaluator) newState() *state {
	s := &state{
		e:       e,
		stack:   make([]*ast.Term, e.plan.depth),
		memoGen: make([]uint32, len(e.funcs)),
		memo:    make([]*ast.Term, len(e.funcs)),
		args:    make([]*ast.Term, e.maxArgs),
	}
	s.iter = func(t *ast.Term) error {
		if s.bres == nil {
			s.bres = t
		}
		return nil
	}
	return s
}

// Eval evaluates the query on input and returns its value: nil when it is
// undefined. An error is the context's, a conflict, or more than one result.
func (e *Evaluator) Eval(ctx context.Context, input ast.Value) (*ast.Term, error) {
	s, _ := e.states.Get().(*state)
	if s == nil {
		s = e.newState()
	}
	defer e.release(s)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ireval: %w", err)
	}
	s.ctx, s.done = ctx, ctx.Done()
	s.gen++
	if s.gen == 0 { // wrapped: forget every memo of 2^32 evaluations ago
		clear(s.memoGen)
		s.gen = 1
	}
	var in *ast.Term
	if input != nil {
		in = ast.NewTerm(input)
	}
	frame := s.push(e.plan.nlocals)
	frame[ir.Input], frame[ir.Data] = in, e.data
	for _, b := range e.plan.blocks {
		if s.execBlock(frame, b) == codeErr {
			return nil, s.err
		}
	}
	return s.result()
}

func (e *Evaluator) release(s *state) {
	clear(s.stack[:s.sp]) // drop references into this evaluation's values
	s.sp = 0
	clear(s.results)
	s.results = s.results[:0]
	s.ctx, s.done, s.err, s.bres = nil, nil, nil, nil
	e.states.Put(s)
}

func (s *state) result() (*ast.Term, error) {
	rs := s.results
	// A result set is a set: equal results are one.
	for i := 1; i < len(rs); i++ {
		if rs[i].Value.Compare(rs[0].Value) != 0 {
			return nil, fmt.Errorf("ireval: %d results, want 1", len(rs))
		}
	}
	if len(rs) == 0 {
		return nil, nil
	}
	obj, ok := rs[0].Value.(ast.Object)
	if !ok || obj.Len() != 1 {
		return nil, fmt.Errorf("ireval: result %v is not a single binding", rs[0])
	}
	var v *ast.Term
	obj.Foreach(func(_, t *ast.Term) { v = t })
	return v, nil
}

func (s *state) push(n int) []*ast.Term {
	f := s.stack[s.sp : s.sp+n : s.sp+n]
	clear(f)
	s.sp += n
	return f
}

// cancelled checks the context every few calls and loop turns: a cheap
// non-blocking receive, so a deadline fails the evaluation promptly.
func (s *state) cancelled() bool {
	s.ticks++
	if s.ticks&7 != 0 || s.done == nil {
		return false
	}
	select {
	case <-s.done:
		s.err = fmt.Errorf("ireval: %w", s.ctx.Err())
		return true
	default:
		return false
	}
}

func read(frame []*ast.Term, o operand) *ast.Term {
	if o.konst != nil {
		return o.konst
	}
	return frame[o.local]
}

var nullTerm = ast.NullTerm()

func (s *state) conflict(st *stmt) int {
	if st.loc != nil && st.loc.Row > 0 {
		s.err = fmt.Errorf("%w at line %d: %s", ErrConflict, st.loc.Row, st.loc.Text)
	} else {
		s.err = ErrConflict
	}
	return codeErr
}

func (s *state) execBlock(frame []*ast.Term, b *block) int {
	for i := range b.stmts {
		st := &b.stmts[i]
		switch st.op {
		case opNop:
		case opReturn:
			return codeRet
		case opResultSetAdd:
			v := frame[st.a.local]
			if v == nil {
				return 0
			}
			s.results = append(s.results, v)
		case opBlock:
			for _, nb := range st.blocks {
				switch k := s.execBlock(frame, nb); {
				case k == codeRet || k == codeErr:
					return k
				case k > 0:
					return k - 1
				}
			}
		case opBreak:
			return int(st.index)
		case opCall:
			v, code := s.call(frame, st)
			if code == codeErr {
				return codeErr
			}
			if v == nil {
				return 0
			}
			frame[st.target] = v
		case opBuiltin:
			v, code := s.builtin(frame, st)
			if code == codeErr {
				return codeErr
			}
			if v == nil {
				return 0
			}
			frame[st.target] = v
		case opAssignVar:
			frame[st.target] = read(frame, st.a)
		case opAssignVarOnce:
			v := read(frame, st.a)
			if cur := frame[st.target]; cur != nil {
				if v == nil || (v != cur && v.Value.Compare(cur.Value) != 0) {
					return s.conflict(st)
				}
				break
			}
			frame[st.target] = v
		case opAssignInt, opMakeNumberInt, opMakeNumberRef:
			frame[st.target] = st.num
		case opScan:
			src := frame[st.a.local]
			if src == nil {
				break
			}
			if k := s.scan(frame, st, src); k != codeDone {
				return k
			}
		case opNot:
			switch k := s.execBlock(frame, st.block); {
			case k == codeRet || k == codeErr:
				return k
			case k == codeDone:
				return 0 // the negated block held: `not` is undefined
			case k > 0:
				return k - 1
			}
		case opDot:
			src, key := read(frame, st.a), read(frame, st.b)
			if src == nil || key == nil {
				return 0
			}
			var v *ast.Term
			switch x := src.Value.(type) {
			case ast.Object:
				v = x.Get(key)
			case *ast.Array:
				v = x.Get(key)
			case ast.Set:
				if x.Contains(key) {
					v = key
				}
			}
			if v == nil {
				return 0
			}
			frame[st.target] = v
		case opLen:
			src := read(frame, st.a)
			if src == nil {
				return 0
			}
			var n int
			switch x := src.Value.(type) {
			case ast.Object:
				n = x.Len()
			case *ast.Array:
				n = x.Len()
			case ast.Set:
				n = x.Len()
			default:
				return 0
			}
			frame[st.target] = ast.InternedTerm(n)
		case opEqual:
			a, b := read(frame, st.a), read(frame, st.b)
			if a == nil || b == nil || (a != b && a.Value.Compare(b.Value) != 0) {
				return 0
			}
		case opNotEqual:
			a, b := read(frame, st.a), read(frame, st.b)
			if a == nil || b == nil || a == b || a.Value.Compare(b.Value) == 0 {
				return 0
			}
		case opMakeNull:
			frame[st.target] = nullTerm
		case opMakeArray:
			frame[st.target] = ast.NewTerm(ast.NewArrayWithCapacity(int(st.capa)))
		case opMakeObject:
			frame[st.target] = ast.NewTerm(ast.NewObject())
		case opMakeSet:
			frame[st.target] = ast.NewTerm(ast.NewSet())
		case opIsArray, opIsObject, opIsSet:
			v := read(frame, st.a)
			if v == nil {
				return 0
			}
			var ok bool
			switch v.Value.(type) {
			case *ast.Array:
				ok = st.op == opIsArray
			case ast.Object:
				ok = st.op == opIsObject
			case ast.Set:
				ok = st.op == opIsSet
			}
			if !ok {
				return 0
			}
		case opIsDefined:
			if frame[st.a.local] == nil {
				return 0
			}
		case opIsUndefined:
			if frame[st.a.local] != nil {
				return 0
			}
		case opResetLocal:
			frame[st.target] = nil
		case opArrayAppend:
			t, v := frame[st.target], read(frame, st.a)
			arr, ok := termValue[*ast.Array](t)
			if !ok || v == nil {
				return 0
			}
			t.Value = arr.Append(v)
		case opObjectInsert, opObjectInsertOnce:
			t, k, v := frame[st.target], read(frame, st.a), read(frame, st.b)
			obj, ok := termValue[ast.Object](t)
			if !ok || k == nil || v == nil {
				return 0
			}
			if st.op == opObjectInsertOnce {
				if cur := obj.Get(k); cur != nil {
					if cur != v && cur.Value.Compare(v.Value) != 0 {
						return s.conflict(st)
					}
					break
				}
			}
			obj.Insert(k, v)
		case opSetAdd:
			t, v := frame[st.target], read(frame, st.a)
			set, ok := termValue[ast.Set](t)
			if !ok || v == nil {
				return 0
			}
			set.Add(v)
		}
	}
	return codeDone
}

func termValue[T ast.Value](t *ast.Term) (T, bool) {
	var zero T
	if t == nil {
		return zero, false
	}
	v, ok := t.Value.(T)
	return v, ok
}

// scan runs the body once per element; it returns codeDone to go on after
// the scan, or what its block must return.
func (s *state) scan(frame []*ast.Term, st *stmt, src *ast.Term) int {
	body := func(k, v *ast.Term) (int, bool) {
		if s.cancelled() {
			return codeErr, true
		}
		frame[st.target], frame[st.value] = k, v
		switch c := s.execBlock(frame, st.block); {
		case c == codeRet || c == codeErr:
			return c, true
		case c == 1:
			return codeDone, true // left the scan
		case c > 1:
			return c - 2, true
		}
		return codeDone, false
	}
	switch x := src.Value.(type) {
	case *ast.Array:
		for i := 0; i < x.Len(); i++ {
			if c, stop := body(ast.InternedTerm(i), x.Elem(i)); stop {
				return c
			}
		}
	case ast.Object:
		for _, k := range x.Keys() {
			if c, stop := body(k, x.Get(k)); stop {
				return c
			}
		}
	case ast.Set:
		for _, k := range x.Slice() {
			if c, stop := body(k, k); stop {
				return c
			}
		}
	}
	return codeDone
}

func (s *state) call(frame []*ast.Term, st *stmt) (*ast.Term, int) {
	fi := int(st.index)
	fn := s.e.funcs[fi]
	if fn.constant {
		return fn.value, codeDone
	}
	if fn.memo && s.memoGen[fi] == s.gen {
		return s.memo[fi], codeDone
	}
	if s.cancelled() {
		return nil, codeErr
	}
	callee := s.push(fn.nlocals)
	for i, p := range fn.params {
		callee[p] = read(frame, st.args[i])
	}
	var ret *ast.Term
	for _, b := range fn.blocks {
		k := s.execBlock(callee, b)
		if k == codeErr {
			s.sp -= fn.nlocals
			return nil, codeErr
		}
		if k == codeRet {
			ret = callee[fn.ret]
			break
		}
	}
	clear(callee)
	s.sp -= fn.nlocals
	if fn.memo {
		s.memoGen[fi], s.memo[fi] = s.gen, ret
	}
	return ret, codeDone
}

// builtin calls OPA's implementation as OPA's evaluator does by default: an
// operand undefined or an error from the builtin makes the call undefined;
// only a Halt (cancellation) is an error.
func (s *state) builtin(frame []*ast.Term, st *stmt) (*ast.Term, int) {
	args := s.args[:len(st.args)]
	for i, a := range st.args {
		v := read(frame, a)
		if v == nil {
			return nil, codeDone
		}
		args[i] = v
	}
	s.bres = nil
	err := st.bi.fn(topdown.BuiltinContext{Context: s.ctx}, args, s.iter)
	clear(args)
	v := s.bres
	s.bres = nil
	if err != nil {
		var h topdown.Halt
		if errors.As(err, &h) {
			s.err = fmt.Errorf("ireval: %s: %w", st.bi.name, err)
			return nil, codeErr
		}
	}
	return v, codeDone
}

// foldConstants computes the functions that do not depend on the input once,
// now, so an evaluation only looks their values up.
func (e *Evaluator) foldConstants(consts []int) error {
	s := e.newState()
	s.ctx = context.Background()
	s.gen = 1
	frame := s.push(2)
	frame[ir.Data] = e.data
	args := []operand{{local: int32(ir.Input)}, {local: int32(ir.Data)}}
	for _, fi := range consts {
		v, code := s.call(frame, &stmt{index: int32(fi), args: args})
		if code == codeErr {
			return decline(e.funcs[fi].name, "evaluating it at build time: %v", s.err)
		}
		e.funcs[fi].value = v
	}
	for _, fi := range consts {
		e.funcs[fi].constant = true
	}
	return nil
}

// checkMutations makes sure a statement that changes a collection in place
// (append, insert, add) can only ever change one the same function made:
// never the input, data, a constant or a callee's result, which other
// evaluations or callers share. OPA's planner only emits such code; this
// keeps the evaluator safe should it ever not. The analysis is
// conservative: a local counts as "maybe foreign" from any write that is not
// a Make until a Make on every path overwrites it.
func (e *Evaluator) checkMutations() error {
	for _, f := range append(slices.Clone(e.funcs), e.plan) {
		foreign := map[int32]bool{}
		for _, p := range f.params {
			foreign[p] = true
		}
		for _, b := range f.blocks {
			if err := mutationsIn(f.name, b, maps.Clone(foreign)); err != nil {
				return err
			}
			// A block may stop anywhere: what it may have written stays.
			foreignWrites(b, foreign)
		}
	}
	return nil
}

func mutationsIn(fn string, b *block, foreign map[int32]bool) error {
	for i := range b.stmts {
		st := &b.stmts[i]
		switch st.op {
		case opMakeArray, opMakeObject, opMakeSet, opResetLocal:
			delete(foreign, st.target)
		case opArrayAppend, opObjectInsert, opObjectInsertOnce, opSetAdd:
			if foreign[st.target] {
				return decline(fn, "local %d is changed in place but may hold a value made elsewhere", st.target)
			}
		case opScan:
			body := maps.Clone(foreign)
			body[st.target], body[st.value] = true, true
			foreignWrites(st.block, body) // what earlier turns left behind
			if err := mutationsIn(fn, st.block, body); err != nil {
				return err
			}
			foreign[st.target], foreign[st.value] = true, true
			foreignWrites(st.block, foreign)
		case opNot:
			if err := mutationsIn(fn, st.block, maps.Clone(foreign)); err != nil {
				return err
			}
			foreignWrites(st.block, foreign)
		case opBlock:
			for _, nb := range st.blocks {
				if err := mutationsIn(fn, nb, maps.Clone(foreign)); err != nil {
					return err
				}
				foreignWrites(nb, foreign)
			}
		default:
			if writes(st) {
				foreign[st.target] = true
			}
		}
	}
	return nil
}

// foreignWrites marks every local a block may write with something other
// than a Make.
func foreignWrites(b *block, foreign map[int32]bool) {
	for i := range b.stmts {
		st := &b.stmts[i]
		switch {
		case st.op == opScan:
			foreign[st.target], foreign[st.value] = true, true
		case writes(st):
			foreign[st.target] = true
		}
		if st.block != nil {
			foreignWrites(st.block, foreign)
		}
		for _, nb := range st.blocks {
			foreignWrites(nb, foreign)
		}
	}
}

func writes(st *stmt) bool {
	switch st.op {
	case opCall, opBuiltin, opAssignVar, opAssignVarOnce, opDot, opLen,
		opAssignInt, opMakeNumberInt, opMakeNumberRef, opMakeNull:
		return true
	}
	return false
}
