package api

import (
	"reflect"
	"testing"
)

// TestNodeDescriptionEqualSeesEveryField: changing any one field of a
// description makes Equal say so (a field Equal forgot would never be
// written to the store by a heartbeat).
func TestNodeDescriptionEqualSeesEveryField(t *testing.T) {
	base := NodeDescription{}
	if !base.Equal(NodeDescription{}) {
		t.Fatal("two zero descriptions differ")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		d := NodeDescription{}
		f := reflect.ValueOf(&d).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int64, reflect.Int:
			f.SetInt(1)
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		default:
			t.Fatalf("field %s of kind %s: teach this test (and Equal) about it", typ.Field(i).Name, f.Kind())
		}
		if base.Equal(d) || d.Equal(base) {
			t.Errorf("NodeDescription.Equal does not see field %s", typ.Field(i).Name)
		}
	}
}
