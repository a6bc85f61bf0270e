// Command argocd-health runs an Argo CD health script the way Argo CD's controller does, so
// tests/chart/test_argocd_health.py can check the script under gopher-lua itself, not only under
// a C Lua with libraries removed.
//
// What it reproduces (argo-cd util/lua/lua.go, read for this harness): a gopher-lua state created
// with SkipOpenLibs, then only the package, base and table libraries opened (Argo CD also opens a
// trimmed "safe" os library; the script under test needs none, so os stays closed here, which is
// stricter); the object as the global `obj`, JSON objects as tables and numbers as LNumber; a one
// second deadline; the value the chunk returns, read as {status, message}.
//
// Usage: argocd-health SCRIPT OBJECT.json...   prints one JSON line per object:
//
//	{"status": "...", "message": "..."}   or   {"error": "..."}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func toLua(state *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		list := state.CreateTable(len(v), 0)
		for _, item := range v {
			list.Append(toLua(state, item))
		}
		return list
	case map[string]interface{}:
		table := state.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(state, item))
		}
		return table
	}
	return lua.LNil
}

func health(script string, object interface{}) map[string]string {
	state := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer state.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase,
		lua.TabLibName:  lua.OpenTable,
	} {
		if err := state.CallByParam(lua.P{Fn: state.NewFunction(open), NRet: 0, Protect: true}, lua.LString(name)); err != nil {
			return map[string]string{"error": err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state.SetContext(ctx)
	state.SetGlobal("obj", toLua(state, object))
	if err := state.DoString(script); err != nil {
		return map[string]string{"error": err.Error()}
	}
	result, ok := state.Get(-1).(*lua.LTable)
	if !ok {
		return map[string]string{"error": "the script returned " + state.Get(-1).Type().String() + ", not a table"}
	}
	out := map[string]string{}
	for _, key := range []string{"status", "message"} {
		if value := result.RawGetString(key); value != lua.LNil {
			out[key] = value.String()
		}
	}
	return out
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT OBJECT.json...")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	encoder := json.NewEncoder(os.Stdout)
	for _, path := range os.Args[2:] {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		var object interface{}
		if err := json.Unmarshal(raw, &object); err != nil {
			fmt.Fprintln(os.Stderr, path, err)
			os.Exit(2)
		}
		if err := encoder.Encode(health(string(script), object)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
}
