// Package policy compiles the Rego policies, reads the tables they declare and
// evaluates the one entry point, data.tenantgate.authz.decision, against an
// input built by the caller. It knows nothing of Envoy, HTTP or YAML: the
// decision is Rego's, this package only prepares it once and runs it many times.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/internal/sourcedir"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/tenantgate/tenantgate/internal/decision"
)

// DecisionQuery is the entry point Go evaluates; TablesQuery is read once per
// compile, for route parsing (the catalog) and for `tenantgate tables`.
const (
	DecisionQuery = "data.tenantgate.authz.decision"
	TablesQuery   = "data.tenantgate.tables"
)

// File is one Rego module: its name (for error positions) and source.
type File = sourcedir.File

// Policy is a compiled, prepared policy. It is immutable and safe for
// concurrent use; a reload compiles a new one.
type Policy struct {
	query   rego.PreparedEvalQuery
	store   storage.Store
	txn     storage.Transaction
	tables  *Tables
	catalog map[string]struct{}
	files   []string
	sources []File // the modules as given, for planning (the IR evaluator)
	// compiler is kept for the queries evaluated off the serving path
	// (explain.go); the prepared query holds it anyway.
	compiler *ast.Compiler
	digest   string
	// nondeterministic names a builtin the policy calls whose answer can
	// change between two evaluations of the same input (time.now_ns,
	// rand.intn, uuid.rfc4122, ...); "" when there is none.
	nondeterministic string
}

// ReadDir reads the *.rego files directly in dir, leaving out *_test.rego:
// tests are for `opa test`, not for serving.
func ReadDir(dir string) ([]File, error) {
	return sourcedir.Read(dir, sourcedir.Policies)
}

// Compile parses and compiles the modules, prepares the decision query and
// reads the tables. Errors carry the file and line the Rego compiler gives.
func Compile(ctx context.Context, files []File) (*Policy, error) {
	if len(files) == 0 {
		return nil, errors.New("policy: no modules")
	}
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })

	modules := make(map[string]*ast.Module, len(files))
	h := sha256.New()
	names := make([]string, len(files))
	for i, f := range files {
		m, err := ast.ParseModuleWithOpts(f.Name, string(f.Content), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		modules[f.Name] = m
		names[i] = f.Name
		fmt.Fprintf(h, "%d:%s%d:", len(f.Name), f.Name, len(f.Content))
		h.Write(f.Content)
	}

	// The decision runs on every proxied request: builtins that reach the
	// network would make it slow and make its answer depend on something
	// other than the request and the snapshot, so a policy may not use them.
	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithUnsafeBuiltins(map[string]struct{}{
			ast.HTTPSend.Name:        {},
			ast.NetLookupIPAddr.Name: {},
		})
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: %w", compiler.Errors)
	}

	// The policy reads no base documents: tenant data reaches it as input,
	// already looked up. An empty store with one long-lived read transaction
	// saves opening a transaction per evaluation. The transaction is never
	// closed: nothing writes to this store, and it goes with the policy
	// when the snapshot that holds it is collected.
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: store: %w", err)
	}

	pq, err := rego.New(
		rego.Query(DecisionQuery),
		rego.Compiler(compiler),
		rego.Store(store),
		rego.Transaction(txn),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(ctx)
	if err != nil {
		store.Abort(ctx, txn)
		return nil, fmt.Errorf("policy: prepare %s: %w", DecisionQuery, err)
	}

	p := &Policy{
		query:            pq,
		store:            store,
		txn:              txn,
		files:            names,
		sources:          files,
		compiler:         compiler,
		digest:           hex.EncodeToString(h.Sum(nil)),
		nondeterministic: nondeterministicCall(compiler),
	}
	if err := p.readTables(ctx, compiler); err != nil {
		store.Abort(ctx, txn)
		return nil, err
	}
	return p, nil
}

// Sources returns the modules the policy was compiled from.
func (p *Policy) Sources() []File { return p.sources }

// Files returns the module file names, sorted.
func (p *Policy) Files() []string { return p.files }

// Digest is a hex sha256 over the module names and sources.
func (p *Policy) Digest() string { return p.digest }

// Deterministic reports whether the decision is a function of the input
// alone, and if not, which builtin makes it vary. The engine's decision
// cache is only sound for a deterministic policy.
func (p *Policy) Deterministic() (ok bool, builtin string) {
	return p.nondeterministic == "", p.nondeterministic
}

// nondeterministicCall returns the first builtin marked nondeterministic
// that a compiled module calls, or "".
func nondeterministicCall(c *ast.Compiler) string {
	var found string
	check := func(op ast.Ref) {
		if b, ok := ast.BuiltinMap[op.String()]; ok && b.Nondeterministic && found == "" {
			found = b.Name
		}
	}
	for _, m := range c.Modules {
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if e.IsCall() {
				check(e.Operator())
			}
			return found != ""
		})
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if call, ok := t.Value.(ast.Call); ok && len(call) > 0 {
				if ref, ok := call[0].Value.(ast.Ref); ok {
					check(ref)
				}
			}
			return found != ""
		})
	}
	return found
}

// Tables returns the seed tables and catalog as declared by the policy.
func (p *Policy) Tables() *Tables { return p.tables }

// IsResource reports whether name is a catalog resource; the route parser
// uses it so that a resource added to the catalog is routed without Go changes.
func (p *Policy) IsResource(name string) bool {
	_, ok := p.catalog[name]
	return ok
}

func (p *Policy) readTables(ctx context.Context, compiler *ast.Compiler) error {
	rs, err := rego.New(
		rego.Query(TablesQuery),
		rego.Compiler(compiler),
		rego.Store(p.store),
		rego.Transaction(p.txn),
	).Eval(ctx)
	if err != nil {
		return fmt.Errorf("policy: %s: %w", TablesQuery, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return fmt.Errorf("policy: %s is undefined", TablesQuery)
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return fmt.Errorf("policy: %s: %w", TablesQuery, err)
	}
	var t Tables
	if err := json.Unmarshal(raw, &t); err != nil {
		return fmt.Errorf("policy: %s: %w", TablesQuery, err)
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("policy: %s: %w", TablesQuery, err)
	}
	p.tables = &t
	p.catalog = make(map[string]struct{}, len(t.Catalog))
	for name := range t.Catalog {
		p.catalog[name] = struct{}{}
	}
	return nil
}

// Eval runs the decision for one input. Any error, an undefined decision, more
// than one result or a malformed one is returned as an error; the caller turns
// it into the fail-closed deny.
func (p *Policy) Eval(ctx context.Context, input ast.Value) (decision.Decision, error) {
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()

	rs, err := p.query.Eval(ctx,
		rego.EvalParsedInput(input),
		rego.EvalTransaction(p.txn),
		rego.EvalInstrument(false),
		// Cancel through context.AfterFunc rather than the goroutine rego
		// starts per evaluation when none is given.
		rego.EvalExternalCancel(cancel),
		// Keep the result as an AST term; converting it to Go maps only to
		// read four fields back would cost most of the allocations.
		rego.EvalGenerateJSON(keepTerm),
	)
	if err != nil {
		return decision.Decision{}, fmt.Errorf("evaluate %s: %w", DecisionQuery, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return decision.Decision{}, fmt.Errorf("evaluate %s: %d results, want 1", DecisionQuery, len(rs))
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return decision.Decision{}, fmt.Errorf("evaluate %s: unexpected result %T", DecisionQuery, rs[0].Expressions[0].Value)
	}
	return fromTerm(t)
}

func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// Decode reads a decision term another evaluator of DecisionQuery produced
// (the engine's IR evaluator), as strictly as Eval reads its own: nil (an
// undefined decision) or a malformed one is an error.
func Decode(t *ast.Term) (decision.Decision, error) {
	if t == nil {
		return decision.Decision{}, fmt.Errorf("evaluate %s: undefined", DecisionQuery)
	}
	return fromTerm(t)
}

var (
	keyAllowed = ast.InternedTerm("allowed")
	keyStatus  = ast.InternedTerm("status")
	keyReason  = ast.InternedTerm("reason")
	keyHeaders = ast.InternedTerm("headers")
)

// fromTerm reads the decision object. It is strict about shape because a
// policy edit could return anything: a wrong type is an error, never an allow.
func fromTerm(t *ast.Term) (decision.Decision, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return decision.Decision{}, fmt.Errorf("decision is %s, want object", ast.ValueName(t.Value))
	}
	var d decision.Decision
	allowed, ok := getBool(obj, keyAllowed)
	if !ok {
		return d, errors.New(`decision: "allowed" is not a boolean`)
	}
	status, ok := getInt(obj, keyStatus)
	if !ok {
		return d, errors.New(`decision: "status" is not an integer`)
	}
	reason, ok := getString(obj, keyReason)
	if !ok || reason == "" {
		return d, errors.New(`decision: "reason" is not a non-empty string`)
	}
	if allowed && status != 200 {
		return d, fmt.Errorf("decision: allowed with status %d", status)
	}
	if !allowed && (status < 400 || status > 599) {
		return d, fmt.Errorf("decision: denied with status %d", status)
	}
	d.Allowed, d.Status, d.Reason = allowed, status, reason

	if ht := obj.Get(keyHeaders); ht != nil {
		hobj, ok := ht.Value.(ast.Object)
		if !ok {
			return decision.Decision{}, errors.New(`decision: "headers" is not an object`)
		}
		d.Headers = make([]decision.Header, 0, hobj.Len())
		var herr error
		hobj.Foreach(func(k, v *ast.Term) {
			ks, kok := k.Value.(ast.String)
			vs, vok := v.Value.(ast.String)
			if !kok || !vok || !validHeader(string(ks), string(vs)) {
				herr = fmt.Errorf("decision: header %v: %v is not a valid lower-case header", k, v)
				return
			}
			d.Headers = append(d.Headers, decision.Header{Name: string(ks), Value: string(vs)})
		})
		if herr != nil {
			return decision.Decision{}, herr
		}
		// Object keys come out in a stable order already; sorting keeps the
		// wire output independent of how the policy built the object.
		slices.SortFunc(d.Headers, func(a, b decision.Header) int { return strings.Compare(a.Name, b.Name) })
	}
	return d, nil
}

func getBool(o ast.Object, k *ast.Term) (bool, bool) {
	v := o.Get(k)
	if v == nil {
		return false, false
	}
	b, ok := v.Value.(ast.Boolean)
	return bool(b), ok
}

func getString(o ast.Object, k *ast.Term) (string, bool) {
	v := o.Get(k)
	if v == nil {
		return "", false
	}
	s, ok := v.Value.(ast.String)
	return string(s), ok
}

func getInt(o ast.Object, k *ast.Term) (int, bool) {
	v := o.Get(k)
	if v == nil {
		return 0, false
	}
	n, ok := v.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	i, ok := n.Int()
	return i, ok
}

// validHeader keeps a policy from emitting a header a proxy would reject or
// that could smuggle a second header line.
func validHeader(name, value string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
