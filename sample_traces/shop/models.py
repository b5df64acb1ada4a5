"""Request and response bodies; their field names are the data that flows between steps."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Item(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Address(BaseModel):
    name: str
    street: str
    zip: str
    country: str = "DE"


class OrderRequest(BaseModel):
    customerId: str
    items: list[Item]
    cardToken: str
    address: Address


class Order(BaseModel):
    orderId: str
    status: str
    reservationId: str | None = None
    paymentId: str | None = None
    shipmentId: str | None = None


class ReservationRequest(BaseModel):
    orderId: str
    items: list[Item]


class Reservation(BaseModel):
    reservationId: str
    orderId: str
    status: str


class Stock(BaseModel):
    sku: str
    available: int


class RestockRequest(BaseModel):
    returnId: str
    items: list[Item]


class Restock(BaseModel):
    restockId: str
    returnId: str


class PaymentRequest(BaseModel):
    orderId: str
    customerId: str
    amount: float
    currency: str = "EUR"
    cardToken: str


class Payment(BaseModel):
    paymentId: str
    orderId: str
    status: str


class RefundRequest(BaseModel):
    paymentId: str
    amount: float
    reason: str
    returnId: str | None = None


class Refund(BaseModel):
    refundId: str
    paymentId: str
    status: str


class ShipmentRequest(BaseModel):
    orderId: str
    reservationId: str
    paymentId: str
    address: Address


class Shipment(BaseModel):
    shipmentId: str
    orderId: str
    carrier: str
    status: str


class NotificationRequest(BaseModel):
    customerId: str
    template: str
    orderId: str | None = None
    shipmentId: str | None = None
    invoiceId: str | None = None
    returnId: str | None = None


class Notification(BaseModel):
    notificationId: str
    status: str


class ReturnRequest(BaseModel):
    orderId: str
    paymentId: str
    customerId: str
    items: list[Item]
    amount: float
    reason: str


class ReturnCase(BaseModel):
    returnId: str
    status: str


class ApprovalRequest(BaseModel):
    subject: str
    kind: str


class Approval(BaseModel):
    approvalId: str
    subject: str
    status: str


class InvoiceRequest(BaseModel):
    orderId: str
    customerId: str
    productId: str


class Invoice(BaseModel):
    invoiceId: str
    orderId: str
    total: float


class Product(BaseModel):
    productId: str
    title: str
    category: str


class Price(BaseModel):
    productId: str
    amount: float
    currency: str


class Review(BaseModel):
    author: str
    rating: int
    text: str


class Reviews(BaseModel):
    productId: str
    average: float
    reviews: list[Review]


class User(BaseModel):
    userId: str
    name: str
    tier: str


class SearchResult(BaseModel):
    query: str
    productIds: list[str]


class Recommendations(BaseModel):
    productId: str
    productIds: list[str]


class ProductPage(BaseModel):
    product: Product
    price: Price
    stock: Stock
    reviews: Reviews
    recommendations: Recommendations
