package sim

import (
	"path/filepath"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs every scenario file in testdata/ (and the regression
// files in testdata/regress/). -rewrite regenerates the expected output.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	reg, _ := filepath.Glob("testdata/regress/*.txt")
	for _, path := range append(files, reg...) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			env := &Env{}
			datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
				return env.HandleTestData(d)
			})
		})
	}
}
