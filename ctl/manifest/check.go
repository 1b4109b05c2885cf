package manifest

import (
	"errors"
	"fmt"

	"github.com/warren-edge/warren/daemons/api"
)

// Validate checks the document's spec with api.ValidateServiceSpec and
// names each problem with its line.
func (d *Document) Validate() error {
	err := api.ValidateServiceSpec(&d.Spec)
	if err == nil {
		return nil
	}
	var ae *api.Error
	if !errors.As(err, &ae) || len(ae.Fields) == 0 {
		return Problems{{d.File, d.Line, err.Error()}}
	}
	var ps Problems
	for _, f := range ae.Fields {
		ps = append(ps, Problem{d.File, d.LineOf(f.Field), f.Field + ": " + f.Message})
	}
	return ps
}

// CheckSet finds what no single document shows: two documents for one
// service name, ports of two services that conflict
// (api.PortConfig.ConflictsWith, the rule the managers apply), and an
// ingress route (host and path, api.IngressRoute.Key) two services claim.
func CheckSet(docs []Document) error {
	type claim struct {
		doc *Document
		i   int
	}
	routes := map[api.IngressKey]claim{}
	type published struct {
		port api.PortConfig
		doc  *Document
		i    int
	}
	var ps Problems
	var seen []published
	byName := map[string]*Document{}
	for di := range docs {
		d := &docs[di]
		if first := byName[d.Spec.Name]; first != nil {
			ps = append(ps, Problem{d.File, d.LineOf("name"), fmt.Sprintf("service %q is also defined at %s: give each service one document", d.Spec.Name, first.Where())})
			continue
		}
		byName[d.Spec.Name] = d
		for i, p := range d.Spec.Ports {
			for _, o := range seen {
				if o.port.ConflictsWith(p) {
					field := fmt.Sprintf("ports[%d]", i)
					ps = append(ps, Problem{d.File, d.LineOf(field), fmt.Sprintf("%s: %s is also published by service %q at %s:%d; two services can share a port only in mode host",
						field, p.Key(), o.doc.Spec.Name, o.doc.File, o.doc.LineOf(fmt.Sprintf("ports[%d]", o.i)))})
				}
			}
		}
		for i, p := range d.Spec.Ports {
			seen = append(seen, published{p, d, i})
		}
		for i, r := range d.Spec.Ingress {
			k := r.Key()
			o, ok := routes[k]
			if !ok {
				routes[k] = claim{d, i}
				continue
			}
			if o.doc != d { // twice in one service: Validate says so
				field := fmt.Sprintf("ingress[%d]", i)
				ps = append(ps, Problem{d.File, d.LineOf(field), fmt.Sprintf("%s: route %s is also claimed by service %q at %s:%d; a route goes to one service",
					field, k, o.doc.Spec.Name, o.doc.File, o.doc.LineOf(fmt.Sprintf("ingress[%d]", o.i)))})
			}
		}
	}
	return ps.err()
}
