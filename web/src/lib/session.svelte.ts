import { api, setApiToken, type User, unwrap } from "./api.ts";
import { ApiError } from "./api-errors.ts";

const TOKEN_KEY = "pepeunit.token";

/** Who is using the UI: the token (kept in localStorage) and the user it belongs to. */
export class Session {
  token = $state<string | null>(null);
  user = $state<User | null>(null);
  ready = $state(false);
  isAdmin = $derived(this.user?.role === "Admin");

  async restore(): Promise<void> {
    const token = localStorage.getItem(TOKEN_KEY);
    if (token) {
      this.#setToken(token);
      try {
        this.user = await unwrap(api.GET("/users/me"));
      } catch (err) {
        // An expired or revoked token: back to anonymous; a network error keeps it.
        if (err instanceof ApiError && (err.status === 401 || err.status === 403))
          this.#setToken(null);
      }
    }
    this.ready = true;
  }

  async login(login: string, password: string): Promise<User> {
    const { token } = await unwrap(api.POST("/users/auth", { body: { login, password } }));
    this.#setToken(token);
    const user = await unwrap(api.GET("/users/me"));
    this.user = user;
    return user;
  }

  /** After a password change every older token stops working: keep the new one. */
  adoptToken(token: string): void {
    this.#setToken(token);
  }

  /** Revokes the token on the server (best effort: offline, it is still forgotten here). */
  async logout(): Promise<void> {
    if (this.token) {
      try {
        await api.POST("/users/logout");
      } catch {}
    }
    this.#setToken(null);
    this.user = null;
  }

  #setToken(token: string | null): void {
    this.token = token;
    setApiToken(token);
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  }
}

export const session = new Session();
