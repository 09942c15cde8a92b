import "@xyflow/svelte/dist/style.css";
import "./app.css";
import { mount } from "svelte";
import App from "./App.svelte";

const target = document.getElementById("app");
if (!target) throw new Error("#app missing from index.html");
mount(App, { target });
