package engine

import (
	"context"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tenantgate/tenantgate/internal/route"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Keys of the input document (README "The input document"). Interned once:
// building an input then allocates only the objects themselves.
var (
	kMethod    = ast.StringTerm("method")
	kPath      = ast.StringTerm("path")
	kValid     = ast.StringTerm("valid")
	kSubject   = ast.StringTerm("subject")
	kUser      = ast.StringTerm("user")
	kID        = ast.StringTerm("id")
	kRole      = ast.StringTerm("role")
	kDisabled  = ast.StringTerm("disabled")
	kLocations = ast.StringTerm("locations")
	kComputers = ast.StringTerm("computers")
	kCustomer  = ast.StringTerm("customer")
	kType      = ast.StringTerm("type")
	kLineage   = ast.StringTerm("lineage")
	kSuspended = ast.StringTerm("suspended")
	kRoute     = ast.StringTerm("route")
	kResource  = ast.StringTerm("resource")
	kComputer  = ast.StringTerm("computer")
	kTarget    = ast.StringTerm("target")
	kNamedUser = ast.StringTerm("named_user")
	kOwners    = ast.StringTerm("named_owners")

	pathValid   = ast.NewTerm(ast.NewObject(ast.Item(kValid, ast.BooleanTerm(true))))
	pathInvalid = ast.NewTerm(ast.NewObject(ast.Item(kValid, ast.BooleanTerm(false))))
)

// DecideAs gathers the facts the policy reads (path verdict, subject, route,
// records looked up in the snapshot's index) and lets the policy decide, for
// an already-verified subject ("" for none); req.Authorization is not read.
// Go never decides here: a fact it could not establish is simply absent.
// `tenantgate check` calls it directly; Engine.Check after verifying the
// token. The error is the evaluation's; the caller fails closed.
func (s *Snapshot) DecideAs(ctx context.Context, sub string, req *Request) (Result, error) {
	input, customer := s.input(sub, req)
	d, err := s.Policy.Eval(ctx, input)
	return Result{Decision: d, User: sub, Customer: customer, Revision: s.Revision}, err
}

// input builds the input document DecideAs evaluates (and ExplainAs, so an
// explanation reads exactly what the decision read), and the target
// customer the route names ("" without a route).
func (s *Snapshot) input(sub string, req *Request) (ast.Object, string) {
	var buf [16]string
	segs, perr := route.Segments(req.Path, buf[:0])

	var rt route.Route
	routed := false
	if perr == nil {
		rt, routed = route.Parse(segs, s.Policy.IsResource)
	}

	var customers customerTerms
	input := ast.NewObject()
	input.Insert(kMethod, ast.StringTerm(req.Method))
	if perr == nil {
		input.Insert(kPath, pathValid)
	} else {
		input.Insert(kPath, pathInvalid)
	}
	if sub != "" {
		input.Insert(kSubject, ast.StringTerm(sub))
		if u := s.Data.Users[sub]; u != nil {
			input.Insert(kUser, s.userTerm(u, &customers))
		}
	}
	if routed {
		r := ast.NewObject(ast.Item(kCustomer, ast.StringTerm(rt.Customer)), ast.Item(kResource, ast.StringTerm(rt.Resource)))
		// Every location qualifier (a locations/{l} and a locations
		// resource's {id}), so the policy checks each one.
		var lb [2]string
		if locs := rt.AppendLocations(lb[:0]); len(locs) > 0 {
			r.Insert(kLocations, stringArray(locs))
		}
		if rt.HasComputer {
			r.Insert(kComputer, ast.StringTerm(rt.Computer))
		}
		if rt.HasID {
			r.Insert(kID, ast.StringTerm(rt.ID))
			// Any resource's id may name a user; the policy decides whether
			// that matters (owner protection reads it for users/{id}).
			if nu := s.Data.Users[rt.ID]; nu != nil {
				input.Insert(kNamedUser, ast.NewTerm(ast.NewObject(
					ast.Item(kID, ast.StringTerm(nu.ID)),
					ast.Item(kRole, ast.StringTerm(nu.Role)),
					ast.Item(kCustomer, customers.term(s.Data.Customers[nu.Customer])),
				)))
			}
			if rt.Resource == "users" {
				s.insertNamedOwners(input, rt.ID, &customers)
			}
		}
		input.Insert(kRoute, ast.NewTerm(r))
		if c := s.Data.Customers[rt.Customer]; c != nil {
			input.Insert(kTarget, customers.term(c))
		}
	}

	return input, rt.Customer
}

// insertNamedOwners adds named_owners: every company-owner whose id equals
// id ignoring ASCII case (owner protection, spec section 3), absent when
// none. Route has checked that a users {id} is a valid user id, so it is
// ASCII and strings.ToLower is the ASCII fold (and allocates nothing for an
// id already in lower case).
func (s *Snapshot) insertNamedOwners(input ast.Object, id string, customers *customerTerms) {
	owners := s.Data.Owners[strings.ToLower(id)]
	if len(owners) == 0 {
		return
	}
	terms := make([]*ast.Term, len(owners))
	for i, o := range owners {
		terms[i] = ast.NewTerm(ast.NewObject(
			ast.Item(kID, ast.StringTerm(o.ID)),
			ast.Item(kCustomer, customers.term(s.Data.Customers[o.Customer])),
		))
	}
	input.Insert(kOwners, ast.ArrayTerm(terms...))
}

func (s *Snapshot) userTerm(u *tenant.User, customers *customerTerms) *ast.Term {
	o := ast.NewObject(
		ast.Item(kID, ast.StringTerm(u.ID)),
		ast.Item(kRole, ast.StringTerm(u.Role)),
		ast.Item(kDisabled, ast.BooleanTerm(u.Disabled)),
		ast.Item(kCustomer, customers.term(s.Data.Customers[u.Customer])),
	)
	if len(u.Locations) > 0 {
		o.Insert(kLocations, stringArray(u.Locations))
	}
	if len(u.Computers) > 0 {
		o.Insert(kComputers, stringArray(u.Computers))
	}
	return ast.NewTerm(o)
}

// customerTerms builds each customer's term at most once per input: the
// user's customer is usually also the target (and a named user's), and a
// term is never mutated, so one serves every place.
type customerTerms struct {
	c [3]*tenant.Customer
	t [3]*ast.Term
}

func (m *customerTerms) term(c *tenant.Customer) *ast.Term {
	for i := range m.c {
		if m.c[i] == nil {
			m.c[i], m.t[i] = c, customerTerm(c)
			return m.t[i]
		}
		if m.c[i] == c {
			return m.t[i]
		}
	}
	return customerTerm(c)
}

// customerTerm is built per request, not once per snapshot: prebuilt terms
// for 20,000 customers were ~480,000 small pointer-rich objects that the
// collector marked on every cycle (a third of its work at that size), for a
// saving of a few allocations on a decision-cache miss. A user's customer
// always exists in validated data; nil (which cannot happen) gives a null,
// which every check of the policy treats as absent.
func customerTerm(c *tenant.Customer) *ast.Term {
	if c == nil {
		return ast.NullTerm()
	}
	return ast.NewTerm(ast.NewObject(
		ast.Item(kID, ast.StringTerm(c.ID)),
		ast.Item(kType, ast.StringTerm(c.Type)),
		ast.Item(kLineage, stringArray(c.Lineage)),
		ast.Item(kSuspended, stringArray(c.Suspended)),
	))
}

func stringArray(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}
