package sqlstore

import "testing"

func TestBind(t *testing.T) {
	sqlite := &Dialect{IndexedBy: func(index string) string { return " INDEXED BY " + index }}
	postgres := &Dialect{Numbered: true}
	for _, tc := range []struct {
		d           *Dialect
		query, want string
	}{
		{sqlite, `SELECT 1 FROM t WHERE a = ? AND b = ?`, `SELECT 1 FROM t WHERE a = ? AND b = ?`},
		{postgres, `SELECT 1 FROM t WHERE a = ? AND b = ?`, `SELECT 1 FROM t WHERE a = $1 AND b = $2`},
		{postgres, `SELECT '?', "a?" FROM t WHERE a = ?`, `SELECT '?', "a?" FROM t WHERE a = $1`},
		{postgres, `SELECT 'it''s ?' WHERE a = ?`, `SELECT 'it''s ?' WHERE a = $1`},
		{sqlite, `FROM c x{index c_open} WHERE a = ?`, `FROM c x INDEXED BY c_open WHERE a = ?`},
		{postgres, `FROM c x{index c_open} WHERE a = ?{index other}`, `FROM c x WHERE a = $1`},
		{postgres, `no parameters`, `no parameters`},
	} {
		if got := tc.d.Bind(tc.query); got != tc.want {
			t.Errorf("Bind(%q) = %q, want %q", tc.query, got, tc.want)
		}
	}
}
