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

func TestNodeDiskLow(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	tests := []struct {
		disk *NodeDisk
		want bool
	}{
		{nil, false}, // not reported
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 2 * gib, FreeBytes: 1 * gib}, false},
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 2 * gib, FreeBytes: 255 * mib}, true},          // under 256MiB
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 2 * gib, FreeBytes: 256 * mib}, false},         // 256MiB is more than 5% of 2GiB
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 100 * gib, FreeBytes: 4 * gib}, true},          // 4%: under 5%
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 100 * gib, FreeBytes: 5 * gib}, false},         // 5% exactly
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 100*gib + 1, FreeBytes: 5 * gib}, true},        // a hair under 5%
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 1 << 62, FreeBytes: 1 << 62 / 100 * 6}, false}, // no overflow
		{&NodeDisk{Path: "/var/lib/warren", TotalBytes: 1 << 62, FreeBytes: 1 << 62 / 100 * 4}, true},  // no overflow
	}
	for _, tt := range tests {
		if got := tt.disk.Low(); got != tt.want {
			t.Errorf("%+v.Low() = %v, want %v", tt.disk, got, tt.want)
		}
	}
}

func TestDiskChanged(t *testing.T) {
	const mib, gib = 1 << 20, 1 << 30
	d := func(free int64) *NodeDisk {
		return &NodeDisk{Path: "/var/lib/warren", TotalBytes: 32 * gib, FreeBytes: free}
	}
	tests := []struct {
		name             string
		stored, reported *NodeDisk
		want             bool
	}{
		{"nothing reported", d(10 * gib), nil, false},
		{"first report", nil, d(10 * gib), true},
		{"moved a little", d(10 * gib), d(10*gib - 100*mib), false}, // under 1% of 32GiB
		{"moved a hundredth", d(10 * gib), d(10*gib - 400*mib), true},
		{"freed a hundredth", d(10 * gib), d(10*gib + 400*mib), true},
		{"crossed the low mark", d(1639 * mib), d(1637 * mib), true}, // 5% of 32GiB is 1638.4MiB
		{"another partition", d(10 * gib), &NodeDisk{Path: "/data/warren", TotalBytes: 32 * gib, FreeBytes: 10 * gib}, true},
	}
	for _, tt := range tests {
		if got := DiskChanged(tt.stored, tt.reported); got != tt.want {
			t.Errorf("%s: DiskChanged(%+v, %+v) = %v, want %v", tt.name, tt.stored, tt.reported, got, tt.want)
		}
	}
}

func TestNodeDiskValidate(t *testing.T) {
	good := NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: 1 << 30, FreeBytes: 1 << 29}
	if err := good.Validate(); err != nil {
		t.Errorf("%+v.Validate() = %v", good, err)
	}
	for _, bad := range []NodeDisk{
		{Path: "relative", TotalBytes: 1, FreeBytes: 0},
		{Path: "/x", TotalBytes: 0, FreeBytes: 0},
		{Path: "/x", TotalBytes: 10, FreeBytes: 11},
		{Path: "/x", TotalBytes: 10, FreeBytes: -1},
	} {
		if err := bad.Validate(); !IsCode(err, CodeInvalid) {
			t.Errorf("%+v.Validate() = %v, want invalid", bad, err)
		}
	}
}
