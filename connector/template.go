package connector

import (
	"bytes"

	"fmt"
	"text/template"
	tparse "text/template/parse"
)

// Template is a text/template that operators write in the configuration
// (customer notices, a vendor's visitor name), restricted so that no
// configuration can make it loop or allocate without bound: it may print
// the data's fields and choose with if/else, nothing more. A range, a
// template call or a function ({{range 100000000000}}, {{printf "%099999999d"
// 0}}) is refused when it is parsed, and a rendering stops at 8 KiB.
type Template struct{ t *template.Template }

const (
	maxTemplateBytes  = 4 << 10
	maxTemplateOutput = 8 << 10
)

var errTemplateTooLong = fmt.Errorf("renders longer than %d bytes", maxTemplateOutput)

// ParseTemplate parses text and renders it once with sample, so that a
// field the data does not have is an error now rather than at run time.
// name appears in errors.
func ParseTemplate(name, text string, sample any) (*Template, error) {
	if len(text) > maxTemplateBytes {
		return nil, fmt.Errorf("is %d bytes; at most %d", len(text), maxTemplateBytes)
	}
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	if err := checkTemplateTree(t.Tree.Root); err != nil {
		return nil, err
	}
	tt := &Template{t: t}
	if _, err := tt.Render(sample); err != nil {
		return nil, err
	}
	return tt, nil
}

// Render executes the template with data.
func (t *Template) Render(data any) (string, error) {
	w := capWriter{max: maxTemplateOutput}
	if err := t.t.Execute(&w, data); err != nil {
		return "", err
	}
	return w.String(), nil
}

// checkTemplateTree allows text, {{.Field}}, and {{if .Field}}…{{else}}…{{end}}.
func checkTemplateTree(n tparse.Node) error {
	switch n := n.(type) {
	case *tparse.TextNode:
		return nil
	case *tparse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkTemplateTree(c); err != nil {
				return err
			}
		}
		return nil
	case *tparse.ActionNode:
		return checkTemplatePipe(n.Pipe)
	case *tparse.IfNode:
		if err := checkTemplatePipe(n.Pipe); err != nil {
			return err
		}
		if err := checkTemplateTree(n.List); err != nil {
			return err
		}
		return checkTemplateTree(n.ElseList)
	default:
		return errNotAllowed(n)
	}
}

func checkTemplatePipe(p *tparse.PipeNode) error {
	if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return errNotAllowed(p)
	}
	if _, ok := p.Cmds[0].Args[0].(*tparse.FieldNode); !ok {
		return errNotAllowed(p)
	}
	return nil
}

func errNotAllowed(n tparse.Node) error {
	return fmt.Errorf("only {{.Field}} and {{if .Field}}…{{else}}…{{end}} are allowed, not %q", n.String())
}

// capWriter is a buffer that refuses to grow past max bytes.
type capWriter struct {
	bytes.Buffer
	max int
}

func (w *capWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.max {
		return 0, errTemplateTooLong
	}
	return w.Buffer.Write(p)
}
