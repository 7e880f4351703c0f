package ireval

import (
	"fmt"
	"math"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// DeclineError says why a plan cannot be run by this evaluator: a statement
// kind, a builtin or a shape it does not support. It is returned only by New,
// never by Eval: a declined policy is served by OPA's own evaluator instead.
type DeclineError struct {
	Func   string // the planned function (or plan) it was found in
	Reason string
}

func (e *DeclineError) Error() string {
	return fmt.Sprintf("ireval: declined: %s: %s", e.Func, e.Reason)
}

// opcode is a statement kind, resolved once at build time so the interpreter
// switches on an integer instead of a Go type.
type opcode uint8

const (
	opNop opcode = iota
	opReturn
	opResultSetAdd
	opBlock
	opBreak
	opCall      // planned function
	opCallConst // planned function whose value does not depend on the input
	opBuiltin
	opAssignVar
	opAssignVarOnce
	opAssignInt
	opScan
	opNot
	opDot
	opLen
	opEqual
	opNotEqual
	opMakeNull
	opMakeNumberInt
	opMakeNumberRef
	opMakeArray
	opMakeObject
	opMakeSet
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opResetLocal
	opArrayAppend
	opObjectInsert
	opObjectInsertOnce
	opSetAdd
)

// operand is a local (konst == nil) or a constant term.
type operand struct {
	local int32
	konst *ast.Term
}

type stmt struct {
	op     opcode
	a, b   operand   // sources: Source/A/Key/Value, B/Value
	target int32     // Target, Result, Key of a scan, Array, Object, Set
	value  int32     // Value local of a scan
	index  int32     // Break index, callee index
	capa   int32     // MakeArray capacity
	num    *ast.Term // MakeNumberInt/AssignInt/MakeNumberRef constant
	args   []operand
	block  *block   // Scan, Not
	blocks []*block // BlockStmt
	bi     *builtin
	loc    *ir.Location
}

type block struct {
	stmts []stmt
}

type function struct {
	name    string
	params  []int32
	ret     int32
	nlocals int
	blocks  []*block
	// memo: a rule without arguments (params input, data) is evaluated at
	// most once per evaluation, as OPA's Wasm compiler does.
	memo bool
	// constant: its value depends on neither the input nor anything
	// nondeterministic, so it was computed once, at build time.
	constant bool
	value    *ast.Term // the constant's value; nil: undefined
	// depth is the stack this function needs, its callees' included.
	depth int
}

type builtin struct {
	name  string
	fn    topdown.BuiltinFunc
	arity int
}

type compiler struct {
	p       *ir.Policy
	strs    []*ast.Term
	funcs   []*function
	byName  map[string]int
	builtin map[string]*builtin
	cur     string
	maxArgs int
	// readsInput per function: whether its body reads the input local
	// other than to hand it to a callee.
	readsInput []bool
	callees    [][]int
}

func decline(fn, format string, args ...any) error {
	return &DeclineError{Func: fn, Reason: fmt.Sprintf(format, args...)}
}

func (c *compiler) compile() (*Evaluator, error) {
	p := c.p
	if p.Static == nil || p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, decline("policy", "want exactly one plan")
	}
	for _, s := range p.Static.Strings {
		c.strs = append(c.strs, ast.StringTerm(s.Value))
	}
	c.builtin = map[string]*builtin{}
	for _, bf := range p.Static.BuiltinFuncs {
		b, err := lookupBuiltin(bf.Name)
		if err != nil {
			return nil, err
		}
		c.builtin[bf.Name] = b
	}
	var funcs []*ir.Func
	if p.Funcs != nil {
		funcs = p.Funcs.Funcs
	}
	c.byName = make(map[string]int, len(funcs))
	for i, f := range funcs {
		if _, dup := c.byName[f.Name]; dup {
			return nil, decline(f.Name, "defined twice")
		}
		c.byName[f.Name] = i
	}
	c.funcs = make([]*function, len(funcs))
	c.readsInput = make([]bool, len(funcs))
	c.callees = make([][]int, len(funcs))
	for i, f := range funcs {
		fn, err := c.compileFunc(i, f)
		if err != nil {
			return nil, err
		}
		c.funcs[i] = fn
	}
	plan := p.Plans.Plans[0]
	c.cur = "plan " + plan.Name
	pf := &function{name: c.cur, params: []int32{int32(ir.Input), int32(ir.Data)}}
	maxLocal := int32(ir.Data)
	for _, b := range plan.Blocks {
		cb, err := c.compileBlock(b, 1, -1, &maxLocal)
		if err != nil {
			return nil, err
		}
		pf.blocks = append(pf.blocks, cb)
	}
	pf.nlocals = int(maxLocal) + 1

	if err := c.checkAcyclic(); err != nil {
		return nil, err
	}
	for i := range c.funcs {
		c.depth(i)
	}
	pf.depth = pf.nlocals
	for _, cs := range c.planCallees(pf) {
		pf.depth = max(pf.depth, pf.nlocals+c.funcs[cs].depth)
	}
	return &Evaluator{funcs: c.funcs, plan: pf, maxArgs: c.maxArgs}, nil
}

// planCallees lists the planned functions the plan calls.
func (c *compiler) planCallees(f *function) []int {
	var out []int
	var walk func(b *block)
	walk = func(b *block) {
		for i := range b.stmts {
			s := &b.stmts[i]
			if s.op == opCall || s.op == opCallConst {
				out = append(out, int(s.index))
			}
			if s.block != nil {
				walk(s.block)
			}
			for _, nb := range s.blocks {
				walk(nb)
			}
		}
	}
	for _, b := range f.blocks {
		walk(b)
	}
	return out
}

func (c *compiler) checkAcyclic() error {
	state := make([]uint8, len(c.funcs)) // 0 new, 1 visiting, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return decline(c.funcs[i].name, "recursive call")
		case 2:
			return nil
		}
		state[i] = 1
		for _, j := range c.callees[i] {
			if err := visit(j); err != nil {
				return err
			}
		}
		state[i] = 2
		return nil
	}
	for i := range c.funcs {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) depth(i int) int {
	f := c.funcs[i]
	if f.depth > 0 {
		return f.depth
	}
	d := f.nlocals
	for _, j := range c.callees[i] {
		d = max(d, f.nlocals+c.depth(j))
	}
	f.depth = d
	return d
}

// constants marks the functions whose value does not depend on the input:
// they read no input themselves and call only such functions. (Nothing
// nondeterministic gets this far: such builtins are declined.)
func (c *compiler) constants() []int {
	constant := make([]int8, len(c.funcs)) // 0 unknown, 1 yes, -1 no
	var isConst func(i int) bool
	isConst = func(i int) bool {
		if constant[i] != 0 {
			return constant[i] > 0
		}
		ok := !c.readsInput[i] && c.funcs[i].memo
		for _, j := range c.callees[i] {
			if !isConst(j) {
				ok = false
			}
		}
		constant[i] = -1
		if ok {
			constant[i] = 1
		}
		return ok
	}
	var out []int
	for i := range c.funcs {
		if isConst(i) {
			out = append(out, i)
		}
	}
	return out
}

func (c *compiler) compileFunc(i int, f *ir.Func) (*function, error) {
	c.cur = f.Name
	fn := &function{name: f.Name, ret: int32(f.Return)}
	maxLocal := int32(f.Return)
	for _, p := range f.Params {
		fn.params = append(fn.params, int32(p))
		maxLocal = max(maxLocal, int32(p))
	}
	if len(f.Params) < 2 || f.Params[0] != ir.Input || f.Params[1] != ir.Data {
		return nil, decline(f.Name, "parameters %v: want input and data first", f.Params)
	}
	fn.memo = len(f.Params) == 2
	for _, b := range f.Blocks {
		cb, err := c.compileBlock(b, 1, i, &maxLocal)
		if err != nil {
			return nil, err
		}
		fn.blocks = append(fn.blocks, cb)
	}
	fn.nlocals = int(maxLocal) + 1
	return fn, nil
}

func (c *compiler) local(l ir.Local, maxLocal *int32) (int32, error) {
	if l < 0 || l > math.MaxInt16 {
		return 0, decline(c.cur, "local %d out of range", l)
	}
	*maxLocal = max(*maxLocal, int32(l))
	return int32(l), nil
}

// target is a local a statement writes: never the input or data, which stay
// what the evaluation was given (that is what makes memoization sound).
func (c *compiler) target(l ir.Local, maxLocal *int32) (int32, error) {
	if l == ir.Input || l == ir.Data {
		return 0, decline(c.cur, "a statement writes %v", l)
	}
	return c.local(l, maxLocal)
}

func (c *compiler) operand(o ir.Operand, fi int, maxLocal *int32) (operand, error) {
	switch v := o.Value.(type) {
	case ir.Local:
		if v == ir.Input && fi >= 0 {
			c.readsInput[fi] = true
		}
		l, err := c.local(v, maxLocal)
		return operand{local: l}, err
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.strs) {
			return operand{}, decline(c.cur, "string constant %d out of range", v)
		}
		return operand{konst: c.strs[v]}, nil
	case ir.Bool:
		return operand{konst: ast.InternedTerm(bool(v))}, nil
	default:
		return operand{}, decline(c.cur, "operand %T", o.Value)
	}
}

// compileBlock translates one block. depth counts the blocks a break can
// leave from here without leaving the function (1 for a function's own
// blocks); a break beyond them is declined.
func (c *compiler) compileBlock(b *ir.Block, depth, fi int, maxLocal *int32) (*block, error) {
	out := &block{stmts: make([]stmt, 0, len(b.Stmts))}
	var err error
	op := func(o ir.Operand) operand {
		if err != nil {
			return operand{}
		}
		var r operand
		r, err = c.operand(o, fi, maxLocal)
		return r
	}
	loc := func(l ir.Local) int32 {
		if err != nil {
			return 0
		}
		var r int32
		r, err = c.local(l, maxLocal)
		return r
	}
	readLoc := func(l ir.Local) int32 {
		if l == ir.Input && fi >= 0 {
			c.readsInput[fi] = true
		}
		return loc(l)
	}
	tgt := func(l ir.Local) int32 {
		if err != nil {
			return 0
		}
		var r int32
		r, err = c.target(l, maxLocal)
		return r
	}
	sub := func(nb *ir.Block, d int) *block {
		if err != nil {
			return nil
		}
		var r *block
		r, err = c.compileBlock(nb, d, fi, maxLocal)
		return r
	}
	for _, s := range b.Stmts {
		var st stmt
		st.loc = s.GetLocation()
		switch s := s.(type) {
		case *ir.NopStmt:
			st.op = opNop
		case *ir.ReturnLocalStmt:
			st.op, st.a = opReturn, operand{local: readLoc(s.Source)}
		case *ir.ResultSetAddStmt:
			if fi >= 0 {
				return nil, decline(c.cur, "result set add in a function")
			}
			st.op, st.a = opResultSetAdd, operand{local: loc(s.Value)}
		case *ir.BlockStmt:
			st.op = opBlock
			for _, nb := range s.Blocks {
				st.blocks = append(st.blocks, sub(nb, depth+1))
			}
		case *ir.BreakStmt:
			if int64(s.Index) >= int64(depth) {
				return nil, decline(c.cur, "break %d leaves the function", s.Index)
			}
			st.op, st.index = opBreak, int32(s.Index)
		case *ir.CallStmt:
			st.target = tgt(s.Result)
			if j, ok := c.byName[s.Func]; ok {
				if len(s.Args) != len(c.p.Funcs.Funcs[j].Params) {
					return nil, decline(c.cur, "call of %s with %d arguments, want %d", s.Func, len(s.Args), len(c.p.Funcs.Funcs[j].Params))
				}
				for k, a := range s.Args {
					if k < 2 {
						// Handing the input and data on is not reading
						// them: the callee's own reads count.
						if l, ok := a.Value.(ir.Local); !ok || l != ir.Local(k) {
							return nil, decline(c.cur, "call of %s with %v in place of the input or data", s.Func, a.Value)
						}
						st.args = append(st.args, operand{local: int32(k)})
						continue
					}
					st.args = append(st.args, op(a))
				}
				st.op, st.index = opCall, int32(j)
				if fi >= 0 {
					c.callees[fi] = append(c.callees[fi], j)
				}
				break
			}
			for _, a := range s.Args {
				st.args = append(st.args, op(a))
			}
			bi, ok := c.builtin[s.Func]
			if !ok {
				return nil, decline(c.cur, "call of %s: neither a planned function nor a declared builtin", s.Func)
			}
			if len(st.args) != bi.arity {
				return nil, decline(c.cur, "call of %s with %d arguments, want %d", s.Func, len(st.args), bi.arity)
			}
			st.op, st.bi = opBuiltin, bi
			c.maxArgs = max(c.maxArgs, len(st.args))
		case *ir.AssignVarStmt:
			st.op, st.a, st.target = opAssignVar, op(s.Source), tgt(s.Target)
		case *ir.AssignVarOnceStmt:
			st.op, st.a, st.target = opAssignVarOnce, op(s.Source), tgt(s.Target)
		case *ir.AssignIntStmt:
			st.op, st.num, st.target = opAssignInt, ast.InternedTerm(int(s.Value)), tgt(s.Target)
		case *ir.ScanStmt:
			st.op = opScan
			st.a = operand{local: readLoc(s.Source)}
			st.target, st.value = tgt(s.Key), tgt(s.Value)
			// The body is one level, the scan around it another: a break
			// 1 from the body ends the scan (as in OPA's Wasm compiler).
			st.block = sub(s.Block, depth+2)
		case *ir.NotStmt:
			st.op, st.block = opNot, sub(s.Block, depth+1)
		case *ir.DotStmt:
			st.op, st.a, st.b, st.target = opDot, op(s.Source), op(s.Key), tgt(s.Target)
		case *ir.LenStmt:
			st.op, st.a, st.target = opLen, op(s.Source), tgt(s.Target)
		case *ir.EqualStmt:
			st.op, st.a, st.b = opEqual, op(s.A), op(s.B)
		case *ir.NotEqualStmt:
			st.op, st.a, st.b = opNotEqual, op(s.A), op(s.B)
		case *ir.MakeNullStmt:
			st.op, st.target = opMakeNull, tgt(s.Target)
		case *ir.MakeNumberIntStmt:
			st.op, st.num, st.target = opMakeNumberInt, ast.InternedTerm(int(s.Value)), tgt(s.Target)
		case *ir.MakeNumberRefStmt:
			if s.Index < 0 || s.Index >= len(c.strs) {
				return nil, decline(c.cur, "number constant %d out of range", s.Index)
			}
			n := ast.Number(c.p.Static.Strings[s.Index].Value)
			if _, ok := n.Int64(); !ok {
				if _, ok := n.Float64(); !ok {
					return nil, decline(c.cur, "number constant %q", n)
				}
			}
			st.op, st.num, st.target = opMakeNumberRef, ast.NewTerm(n), tgt(s.Target)
		case *ir.MakeArrayStmt:
			st.op, st.capa, st.target = opMakeArray, max(s.Capacity, 0), tgt(s.Target)
		case *ir.MakeObjectStmt:
			st.op, st.target = opMakeObject, tgt(s.Target)
		case *ir.MakeSetStmt:
			st.op, st.target = opMakeSet, tgt(s.Target)
		case *ir.IsArrayStmt:
			st.op, st.a = opIsArray, op(s.Source)
		case *ir.IsObjectStmt:
			st.op, st.a = opIsObject, op(s.Source)
		case *ir.IsSetStmt:
			st.op, st.a = opIsSet, op(s.Source)
		case *ir.IsDefinedStmt:
			st.op, st.a = opIsDefined, operand{local: readLoc(s.Source)}
		case *ir.IsUndefinedStmt:
			st.op, st.a = opIsUndefined, operand{local: readLoc(s.Source)}
		case *ir.ResetLocalStmt:
			st.op, st.target = opResetLocal, tgt(s.Target)
		case *ir.ArrayAppendStmt:
			st.op, st.a, st.target = opArrayAppend, op(s.Value), tgt(s.Array)
		case *ir.ObjectInsertStmt:
			st.op, st.a, st.b, st.target = opObjectInsert, op(s.Key), op(s.Value), tgt(s.Object)
		case *ir.ObjectInsertOnceStmt:
			st.op, st.a, st.b, st.target = opObjectInsertOnce, op(s.Key), op(s.Value), tgt(s.Object)
		case *ir.SetAddStmt:
			st.op, st.a, st.target = opSetAdd, op(s.Value), tgt(s.Set)
		default:
			// WithStmt, CallDynamicStmt, ObjectMergeStmt and anything
			// newer: not needed by tenantgate's policy, so not written.
			return nil, decline(c.cur, "statement %s", strings.TrimPrefix(fmt.Sprintf("%T", s), "*ir."))
		}
		if err != nil {
			return nil, err
		}
		out.stmts = append(out.stmts, st)
	}
	return out, nil
}
